"""Temporal decoding: what it learns, how it is stored (its use in generation and registration:
test_video_pipeline.py)."""

from __future__ import annotations

import pytest
import torch

from generation.video import checkpoints, temporal_decoding
from generation.video.config import ConfigError
from generation.video.training import TrainingPlan


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
