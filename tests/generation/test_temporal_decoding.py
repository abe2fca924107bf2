"""Temporal decoding: what it learns, how the pipeline uses it, and how registration checks it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError

from generation import services
from generation.video import checkpoints, temporal_decoding
from generation.video.checkpoints import interpolation_scheduler_card, save_model, write_card
from generation.video.config import ConfigError, VariantConfig
from generation.video.models import TINY, build_autoencoder, build_t2i, inflate_t2i
from generation.video.pipeline import EmuVideoGenerator, interpolation_layout
from generation.video.schedules import sampling_scheduler
from generation.video.training import TrainingPlan

SIZE = replace(TINY, cross_attention_dim=384)  # MiniLM's hidden size
PROMPTS = ["a red circle moves left on a blue background", "a green square grows"]


def _scenes(n: int, gen: torch.Generator, frames: int = 6) -> torch.Tensor:
    """(n, 4, T, 8, 8) latents: a still random background, and a bright 2×2 block that moves
    one cell right per frame."""
    background = torch.randn(n, 4, 1, 8, 8, generator=gen) * 0.5
    video = background.repeat(1, 1, frames, 1, 1)
    rows = torch.randint(0, 6, (n,), generator=gen)
    for i in range(n):
        for t in range(frames):
            video[i, :, t, rows[i] : rows[i] + 2, t : t + 2] = 2.0
    return video


def _change(latents: torch.Tensor) -> float:
    return float((latents[:, :, 1:] - latents[:, :, :-1]).abs().mean())


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    """A temporal decoder trained briefly with the project's own loss on such scenes."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = temporal_decoding.build(4, width=16)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = temporal_decoding.loss(model, _scenes(16, gen), 0.6, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_it_starts_as_the_identity():
    model = temporal_decoding.build(4)
    latents = torch.randn(2, 4, 5, 8, 8)
    assert torch.equal(model(latents), latents)


def test_trained_it_holds_a_still_background_still_and_keeps_the_moving_block(trained):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(1)
    clean = _scenes(32, gen)
    noisy = clean + 0.4 * torch.randn(clean.shape, generator=gen)  # every frame on its own
    with torch.no_grad():
        out = trained(noisy)
        kept = trained(clean)
    still = (clean[:, :, 1:] == clean[:, :, :-1]).all(dim=1, keepdim=True)
    moved_in = (noisy[:, :, 1:] - noisy[:, :, :-1]).abs()
    moved_out = (out[:, :, 1:] - out[:, :, :-1]).abs()
    # the background's frame-to-frame change falls to under half of what came in
    assert (
        moved_out[still.expand_as(moved_out)].mean()
        < 0.5 * moved_in[still.expand_as(moved_in)].mean()
    )
    # and the result is nearer the clean scene than what came in
    assert (out - clean).abs().mean() < 0.6 * (noisy - clean).abs().mean()
    # a clean moving block is not smoothed away: most of its motion stays
    assert _change(kept) > 0.8 * _change(clean)


def test_the_shipped_card_is_what_train_variants_writes():
    card = checkpoints.read_card(checkpoints.PACKAGE_CHECKPOINT_DIR / temporal_decoding.FOLDER)
    plan = TrainingPlan()
    assert card["recipe"] == {
        "steps": plan.temporal_steps,
        "batch": plan.temporal_batch,
        "lr": plan.temporal_lr,
        "sigma": plan.temporal_sigma,
        "videos": plan.videos,
    }
    assert card["steps_done"] == plan.temporal_steps and card["device"]


def test_save_and_load_round_trip(trained, tmp_path):  # type: ignore[no-untyped-def]
    temporal_decoding.save(trained, tmp_path / temporal_decoding.FOLDER, {"recipe": {"steps": 3}})
    back = temporal_decoding.load(tmp_path)
    x = torch.randn(1, 4, 4, 8, 8)
    with torch.no_grad():
        # stored in fp16: the same model to within half precision
        assert torch.allclose(back(x), trained(x), atol=2e-2)
    card = checkpoints.read_card(tmp_path / temporal_decoding.FOLDER)
    assert card["architecture"] == {"channels": 4, "width": 16}
    assert temporal_decoding.version(tmp_path) != "none"


def test_loading_where_there_is_none_is_a_config_error_naming_the_command(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="train_variants --only temporal-decoder"):
        temporal_decoding.load(tmp_path)


# --- in the pipeline ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-pipeline")
    torch.manual_seed(0)
    vae = build_autoencoder(SIZE)
    vae.register_to_config(scaling_factor=0.5)
    unet = inflate_t2i(build_t2i(SIZE))
    with torch.no_grad():
        unet.transformer_in.proj_out.weight.normal_(0, 0.02)
    save_model(unet, folder / "unet")
    save_model(vae, folder / "vae")
    sampling_scheduler("zero_snr").save_pretrained(str(folder / "scheduler"))
    # its own video U-Net serves as its interpolator
    shutil.copytree(folder / "unet", folder / "interpolation_unet")
    write_card(
        folder / "interpolation_unet",
        {"scheduler": interpolation_scheduler_card("zero_snr"), "layout": {"in_frames": 4}},
    )
    return folder


def _config(folder: Path, **kw: object) -> VariantConfig:
    base = {"checkpoint": str(folder), "height": 16, "width": 16, "frames": 4, "steps": 2}
    return VariantConfig.from_dict({**base, **kw})


def _root_with(tmp_path: Path, model: torch.nn.Module) -> Path:
    temporal_decoding.save(model, tmp_path / temporal_decoding.FOLDER, {"recipe": {"steps": 1}})
    return tmp_path


def test_off_by_default_and_the_identity_changes_nothing(tiny_folder, tmp_path):  # type: ignore[no-untyped-def]
    assert VariantConfig().temporal_decoding is False
    plain = EmuVideoGenerator(_config(tiny_folder)).generate(PROMPTS, [3, 4])
    root = _root_with(tmp_path, temporal_decoding.build(4))
    gen = EmuVideoGenerator(_config(tiny_folder, temporal_decoding=True), checkpoint_root=root)
    assert gen.temporal_decoder is not None
    for got, want in zip(gen.generate(PROMPTS, [3, 4]), plain, strict=True):
        assert np.array_equal(got.frames, want.frames)


def test_the_frames_are_steadied_before_interpolation_which_keeps_them(tiny_folder, tmp_path):  # type: ignore[no-untyped-def]
    # given a temporal decoder that changes the latents (it adds 0.5 to every one)
    model = temporal_decoding.build(4, width=8)
    with torch.no_grad():
        model.net[-1].bias.fill_(0.5)
    root = _root_with(tmp_path, model)
    plain = EmuVideoGenerator(_config(tiny_folder)).generate(PROMPTS, [3, 4])
    steady = EmuVideoGenerator(
        _config(tiny_folder, temporal_decoding=True), checkpoint_root=root
    ).generate(PROMPTS, [3, 4])
    interp = EmuVideoGenerator(
        _config(tiny_folder, temporal_decoding=True, interpolation=True), checkpoint_root=root
    ).generate(PROMPTS, [3, 4])
    # then the videos are not the plain ones
    assert any(not np.array_equal(a.frames, b.frames) for a, b in zip(steady, plain, strict=True))
    # and the interpolated video's frame 4k is frame k of the steadied video
    _, positions = interpolation_layout(4)
    for got, given in zip(interp, steady, strict=True):
        assert np.abs(got.frames[positions].astype(int) - given.frames.astype(int)).max() <= 1


def test_on_without_a_temporal_decoder_is_refused_when_loading(tiny_folder, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no temporal decoder"):
        EmuVideoGenerator(_config(tiny_folder, temporal_decoding=True), checkpoint_root=tmp_path)


def test_registration_notes_it_and_refuses_it_where_none_is(tiny_folder, settings, tmp_path):  # type: ignore[no-untyped-def]
    # against the shipped checkpoints it is accepted, with a note
    _, notes = services.checked_variant_config({"temporal_decoding": True})
    assert any(temporal_decoding.FOLDER in note for note in notes)
    # where the checkpoint folder has none, registration says so
    settings.JUICE_CHECKPOINT_DIR = str(tmp_path)
    config = {"checkpoint": str(tiny_folder), "temporal_decoding": True}
    with pytest.raises(ValidationError, match="no temporal decoder"):
        services.check_variant_config(config)
    services.check_variant_config({**config, "temporal_decoding": False})
