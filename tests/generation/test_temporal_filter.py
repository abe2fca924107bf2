"""The temporal filter on decoded frames (generation/video/temporal_filter.py)."""

from __future__ import annotations

import numpy as np
import pytest

from generation.video.config import ConfigError, VariantConfig
from generation.video.temporal_filter import steady


def _change(videos: np.ndarray) -> float:
    return float(np.abs(np.diff(videos.astype(np.float32), axis=-4)).mean())


def _moving_block(frames: int = 8, size: int = 32) -> np.ndarray:
    """A white 8×8 block moving 3 pixels a frame over a dark blue background."""
    video = np.zeros((frames, size, size, 3), dtype=np.uint8)
    video[..., 2] = 90
    for t in range(frames):
        video[t, 10:18, 2 + 3 * t : 10 + 3 * t] = 255
    return video


def test_off_changes_nothing() -> None:
    video = _moving_block()
    assert steady(video, 0.0) is video
    assert np.array_equal(steady(video[:1], 16.0), video[:1])  # one frame: nothing to filter


def test_flicker_under_tau_is_averaged_away_near_the_clean_scene() -> None:
    # given a still scene whose pixels flicker by a few levels from frame to frame
    rng = np.random.default_rng(0)
    clean = np.broadcast_to(rng.integers(40, 200, (1, 16, 16, 3)), (8, 16, 16, 3))
    noisy = np.clip(clean + rng.normal(0, 3, clean.shape), 0, 255).round().astype(np.uint8)
    # when filtered with τ well over the flicker
    out = steady(noisy, 16.0)
    # then the change from frame to frame drops to under half, and the frames move nearer the
    # clean scene
    assert _change(out) < 0.5 * _change(noisy)
    assert (
        np.abs(out - clean.astype(np.float32)).mean()
        < np.abs(noisy - clean.astype(np.float32)).mean()
    )


def test_motion_and_cuts_far_over_tau_are_kept() -> None:
    video = _moving_block()
    assert np.array_equal(steady(video, 16.0), video)  # edges change by 165+ levels
    cut = video.copy()
    cut[4:] = (200, 40, 20)  # the scene changes at frame 4 (by 120+ levels everywhere)
    assert np.array_equal(steady(cut, 16.0), cut)
    # a change of about 3τ leaks in by a level or two at most
    near = video.copy()
    near[4:] = np.clip(near[4:].astype(int) + 48, 0, 255)
    assert np.abs(steady(near, 16.0).astype(int) - near).max() <= 2


def test_a_batch_filters_each_video_on_its_own() -> None:
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (3, 6, 8, 8, 3)).astype(np.uint8)
    batch[1] = np.clip(batch[1] // 4 + 100, 0, 255)
    out = steady(batch, 24.0)
    for i in range(3):
        assert np.array_equal(out[i], steady(batch[i], 24.0))


def test_the_config_key_is_a_tau_in_levels() -> None:
    assert VariantConfig().temporal_filter == 0.0
    assert VariantConfig.from_dict({"temporal_filter": 16}).temporal_filter == 16.0
    for bad in (-1, 65, True, "16"):
        with pytest.raises(ConfigError, match="temporal_filter"):
            VariantConfig.from_dict({"temporal_filter": bad})
