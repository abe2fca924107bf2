"""Generation behind `load_generator`, on a tiny pipeline saved to a temporary folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError

from generation import services
from generation.video import temporal_decoding
from generation.video.checkpoints import (
    interpolation_sampling_card,
    interpolation_scheduler_card,
    resolve_video_folder,
    save_model,
    write_card,
)
from generation.video.config import ConfigError, VariantConfig
from generation.video.models import TINY, build_autoencoder, build_t2i, inflate_t2i
from generation.video.pipeline import (
    EmuVideoGenerator,
    interpolation_layout,
    key_frame_blend,
    sdedit_timesteps,
)
from generation.video.schedules import sampling_scheduler

SIZE = replace(TINY, cross_attention_dim=384)  # MiniLM's hidden size
PROMPTS = ["a red circle moves left on a blue background", "a green square grows"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diffusers-layout folder (unet/, vae/, scheduler/) as a GPU cluster would ship one."""
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
    return folder


def _config(folder: Path, **kw: object) -> VariantConfig:
    base = {"checkpoint": str(folder), "height": 16, "width": 16, "frames": 4, "steps": 2}
    return VariantConfig.from_dict({**base, **kw})


@pytest.mark.parametrize("mode", ["factorized", "direct"])
def test_loads_a_saved_diffusers_folder_and_generates(tiny_folder, mode):  # type: ignore[no-untyped-def]
    gen = EmuVideoGenerator(_config(tiny_folder, mode=mode))
    videos = gen.generate(PROMPTS, [1, 2])
    assert len(videos) == 2
    assert videos[0].frames.shape == (4, 16, 16, 3) and videos[0].frames.dtype == np.uint8
    assert videos[0].fps == 4 and videos[0].seconds > 0
    assert (gen.t2i is not None) == (mode == "factorized")
    assert not np.array_equal(videos[0].frames, videos[1].frames)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_half_precision_u_nets_give_nearly_the_float32_videos(tiny_folder, precision):  # type: ignore[no-untyped-def]
    full = EmuVideoGenerator(_config(tiny_folder, interpolation=False))
    half = EmuVideoGenerator(_config(tiny_folder, interpolation=False), precision=precision)
    assert {p.dtype for p in half.unet.parameters()} == {getattr(torch, precision)}
    assert {p.dtype for p in half.t2i.parameters()} == {getattr(torch, precision)}
    # The sampler's arithmetic and the VAE stay in float32.
    assert {p.dtype for p in half.vae.parameters()} == {torch.float32}

    reference = np.stack([v.frames for v in full.generate(PROMPTS, [3, 4])]).astype(int)
    got = np.stack([v.frames for v in half.generate(PROMPTS, [3, 4])]).astype(int)

    other_seeds = np.stack([v.frames for v in full.generate(PROMPTS, [5, 6])]).astype(int)
    # Rounding, not a different video: under 5 of 255 levels off on average (seen: bfloat16
    # 2.9, float16 0.3 on this untrained U-Net), where other seeds are about 40 off.
    off = np.abs(got - reference).mean()
    assert off < 5.0
    assert np.abs(other_seeds - reference).mean() > 8 * off


def test_an_unknown_precision_is_refused_by_name(tiny_folder):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="Unknown precision 'fp8'.*float32, bfloat16, float16"):
        EmuVideoGenerator(_config(tiny_folder), precision="fp8")


def test_each_video_depends_only_on_its_own_seed(tiny_folder):  # type: ignore[no-untyped-def]
    gen = EmuVideoGenerator(_config(tiny_folder))
    batch = gen.generate(PROMPTS, [7, 8])
    alone = gen.generate(PROMPTS[1:], [8])
    diff = np.abs(batch[1].frames.astype(int) - alone[0].frames.astype(int))
    assert diff.max() <= 1
    again = gen.generate(PROMPTS[:1], [7])
    assert np.abs(batch[0].frames.astype(int) - again[0].frames.astype(int)).max() <= 1


def test_interpolation_layout_places_frame_k_at_4k():
    out_frames, positions = interpolation_layout(8)
    assert out_frames == 29
    assert positions == [0, 4, 8, 12, 16, 20, 24, 28]


def test_interpolation_returns_four_times_the_frame_rate(tiny_folder):  # type: ignore[no-untyped-def]
    # the folder's own video U-Net serves as the interpolation model here
    (tiny_folder / "interpolation_unet").mkdir(exist_ok=True)
    for item in (tiny_folder / "unet").iterdir():
        (tiny_folder / "interpolation_unet" / item.name).write_bytes(item.read_bytes())
    write_card(
        tiny_folder / "interpolation_unet",
        {"scheduler": interpolation_scheduler_card("zero_snr"), "layout": {"in_frames": 4}},
    )
    gen = EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    video = gen.generate(PROMPTS[:1], [3])[0]
    assert video.frames.shape[0] == interpolation_layout(4)[0] == 13
    assert video.fps == 16


def test_the_interpolator_is_stepped_by_its_own_scheduler(tiny_folder, monkeypatch):  # type: ignore[no-untyped-def]
    # given a variant whose own scheduler is an epsilon one (the folder's scheduler/)
    (tiny_folder / "interpolation_unet").mkdir(exist_ok=True)
    for item in (tiny_folder / "unet").iterdir():
        (tiny_folder / "interpolation_unet" / item.name).write_bytes(item.read_bytes())
    write_card(
        tiny_folder / "interpolation_unet",
        {"scheduler": interpolation_scheduler_card("zero_snr"), "layout": {"in_frames": 4}},
    )
    gen = EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    gen.scheduler = sampling_scheduler("standard")
    stepped: list[str] = []
    for name, sched in (("variant", gen.scheduler), ("interpolator", gen.interp_scheduler)):
        real = sched.step
        monkeypatch.setattr(
            sched, "step", lambda *a, _n=name, _r=real, **k: stepped.append(_n) or _r(*a, **k)
        )
    # when it makes a video
    gen.generate(PROMPTS[:1], [3])
    # then the video steps were the variant's, the interpolation steps the interpolator's,
    # whose card says v-prediction under zero SNR
    assert stepped == ["variant"] * 4 + ["interpolator"] * 2  # T2I 2 + video 2, then 2
    assert gen.interp_scheduler.config.prediction_type == "v_prediction"
    assert gen.interp_scheduler.config.rescale_betas_zero_snr


def _own_interpolator(folder: Path, **card: object) -> None:
    """The folder's own video U-Net as its interpolation model, with this card."""
    (folder / "interpolation_unet").mkdir(exist_ok=True)
    for item in (folder / "unet").iterdir():
        (folder / "interpolation_unet" / item.name).write_bytes(item.read_bytes())
    write_card(
        folder / "interpolation_unet",
        {"scheduler": interpolation_scheduler_card("zero_snr"), "layout": {"in_frames": 4}, **card},
    )


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_interpolation_keeps_the_given_frames(tiny_folder, strength):  # type: ignore[no-untyped-def]
    # given an untrained interpolator, which on its own would redraw every frame
    _own_interpolator(tiny_folder, sampling=interpolation_sampling_card(strength))
    plain = EmuVideoGenerator(_config(tiny_folder)).generate(PROMPTS, [3, 4])
    gen = EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    assert gen.interp_strength == strength and gen.interp_guidance_text is None
    # when it interpolates the same seeds' videos
    videos = gen.generate(PROMPTS, [3, 4])
    # then frame 4k of the output is frame k of the video without interpolation
    _, positions = interpolation_layout(4)
    for got, given in zip(videos, plain, strict=True):
        kept = got.frames[positions].astype(int) - given.frames.astype(int)
        assert np.abs(kept).max() <= 1
        # and the frames between are new ones, not copies of a neighbour
        assert np.abs(got.frames[1].astype(int) - given.frames[0].astype(int)).mean() > 0.5


def test_interpolation_at_strength_zero_runs_no_step(tiny_folder, monkeypatch):  # type: ignore[no-untyped-def]
    _own_interpolator(tiny_folder, sampling=interpolation_sampling_card(0.0))
    gen = EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    plain = EmuVideoGenerator(_config(tiny_folder)).generate(PROMPTS, [5, 6])
    monkeypatch.setattr(gen, "interpolator", _Refuse())
    # the model refuses calls, so no denoising step ran; the given frames are kept
    videos = gen.generate(PROMPTS, [5, 6])
    _, positions = interpolation_layout(4)
    for got, given in zip(videos, plain, strict=True):
        assert np.abs(got.frames[positions].astype(int) - given.frames.astype(int)).max() <= 1
    # and interpolating frames from elsewhere gives the same layout
    out = gen.interpolate(np.stack([v.frames for v in plain]), PROMPTS, [5, 6])
    assert out.shape == (2, 13, 16, 16, 3) and out.dtype == np.uint8


class _Refuse:
    def __call__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the interpolator ran at strength 0")


def test_key_frame_blend_and_sdedit_timesteps():
    latents = torch.arange(2.0).reshape(1, 1, 2, 1, 1)  # given frames 0 and 1
    blend = key_frame_blend(latents, [0, 4], 5)
    assert blend.flatten().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    steps = torch.tensor([999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
    assert sdedit_timesteps(steps, 1.0).tolist() == steps.tolist()
    assert sdedit_timesteps(steps, 0.3).tolist() == [299, 199, 99]
    assert sdedit_timesteps(steps, 0.0).tolist() == []


@pytest.mark.parametrize(
    ("sampling", "reason"),
    [
        ({"strength": 1.5}, "sampling strength"),
        ({"strength": -0.1}, "sampling strength"),
        ({"strength": "half"}, "sampling strength"),
        ({"strength": True}, "sampling strength"),
        ({"strength": 0.5, "guidance_text": -1}, "text guidance"),
        ({"strength": 0.5, "guidance_text": "none"}, "text guidance"),
    ],
)
def test_an_interpolator_card_with_bad_sampling_is_refused(tiny_folder, sampling, reason):  # type: ignore[no-untyped-def]
    _own_interpolator(tiny_folder, sampling=sampling)
    with pytest.raises(ConfigError, match=reason):
        EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    (tiny_folder / "interpolation_unet" / "card.json").unlink()


def test_an_interpolator_without_its_schedule_in_its_card_is_refused(tiny_folder):  # type: ignore[no-untyped-def]
    (tiny_folder / "interpolation_unet").mkdir(exist_ok=True)
    for item in (tiny_folder / "unet").iterdir():
        (tiny_folder / "interpolation_unet" / item.name).write_bytes(item.read_bytes())
    write_card(tiny_folder / "interpolation_unet", {"layout": {"in_frames": 4}})
    with pytest.raises(ConfigError, match="which schedule it was trained with"):
        EmuVideoGenerator(_config(tiny_folder, interpolation=True))
    (tiny_folder / "interpolation_unet" / "card.json").unlink()


def test_unknown_recipe_and_relative_paths_are_config_errors(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="No trained checkpoint"):
        resolve_video_folder(VariantConfig(schedule="linear"), tmp_path)
    with pytest.raises(ConfigError, match="absolute"):
        resolve_video_folder(VariantConfig(checkpoint="../elsewhere"), tmp_path)
    with pytest.raises(ConfigError, match="no unet"):
        resolve_video_folder(VariantConfig(checkpoint=str(tmp_path)), tmp_path)


def test_empty_checkpoint_resolves_to_the_recipe_folder(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "video-direct-zero_snr-frozen-multistage" / "unet").mkdir(parents=True)
    (tmp_path / "video-direct-zero_snr-frozen-multistage" / "unet" / "config.json").write_text("{}")
    config = VariantConfig(mode="direct", multistage=True)
    assert resolve_video_folder(config, tmp_path).name == "video-direct-zero_snr-frozen-multistage"


# --- temporal decoding ------------------------------------------------------------------------


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


def test_frames_are_steadied_before_interpolation_which_keeps_them(tiny_folder, tmp_path):  # type: ignore[no-untyped-def]
    # given a temporal decoder that changes the latents, each by its neighbouring frames
    torch.manual_seed(0)
    model = temporal_decoding.build(4, width=8)
    with torch.no_grad():
        model.net[-1].weight.normal_(0, 0.3)
    root = _root_with(tmp_path, model)
    _own_interpolator(tiny_folder)
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


def test_the_temporal_filter_runs_last_on_the_decoded_frames(tiny_folder):  # type: ignore[no-untyped-def]
    from generation.video.temporal_filter import steady

    plain = EmuVideoGenerator(_config(tiny_folder)).generate(PROMPTS, [3, 4])
    filtered = EmuVideoGenerator(_config(tiny_folder, temporal_filter=40)).generate(PROMPTS, [3, 4])
    assert any(not np.array_equal(a.frames, b.frames) for a, b in zip(filtered, plain, strict=True))
    for got, given in zip(filtered, plain, strict=True):
        assert np.array_equal(got.frames, steady(given.frames, 40.0))


def test_on_without_a_temporal_decoder_is_refused_when_loading(tiny_folder, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no temporal decoder"):
        EmuVideoGenerator(_config(tiny_folder, temporal_decoding=True), checkpoint_root=tmp_path)


def test_registration_refuses_temporal_decoding_where_none_is(tiny_folder, settings, tmp_path):  # type: ignore[no-untyped-def]
    # against the shipped checkpoints it is accepted, with a note
    _, notes = services.checked_variant_config({"temporal_decoding": True})
    assert any(temporal_decoding.FOLDER in note for note in notes)
    # where the checkpoint folder has none, registration says so
    settings.JUICE_CHECKPOINT_DIR = str(tmp_path)
    config = {"checkpoint": str(tiny_folder), "temporal_decoding": True}
    with pytest.raises(ValidationError, match="no temporal decoder"):
        services.check_variant_config(config)
    services.check_variant_config({**config, "temporal_decoding": False})


def test_registration_notes_the_temporal_filter():  # type: ignore[no-untyped-def]
    _, notes = services.checked_variant_config({"temporal_filter": 16})
    assert any("16 levels" in note for note in notes)
    _, notes = services.checked_variant_config({})
    assert not any("Filters" in note for note in notes)
