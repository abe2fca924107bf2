"""The shared presentation of a pair: the smaller size, rate and length, centred."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.video.presentation import (
    ClipFormat,
    Presentation,
    common_presentation,
    crop_box,
    frame_indices,
    present,
)
from generation.video.probe import probe
from tests.generation.clips import make_clip


def test_equal_formats_need_no_presentation_of_their_own():
    same = ClipFormat(256, 256, 8, 24)
    assert common_presentation(same, ClipFormat(256, 256, 8, 24)) is None


def test_the_pair_is_shown_at_the_smaller_aspect_size_rate_and_length():
    square = ClipFormat(width=256, height=256, fps=4, frames=8)  # 2 s
    portrait = ClipFormat(width=480, height=720, fps=8, frames=49)  # 6.1 s
    wide = ClipFormat(width=1280, height=720, fps=24, frames=120)  # 5 s

    assert common_presentation(square, portrait) == Presentation(170, 254, 4, 8)
    assert common_presentation(portrait, square) == Presentation(170, 254, 4, 8)
    assert common_presentation(square, wide) == Presentation(256, 256, 4, 8)
    assert common_presentation(wide, ClipFormat(640, 480, 30, 300)) == Presentation(
        640, 480, 24, 120
    )


def test_the_longer_clip_is_cut_around_its_middle_and_sampled_at_the_lower_rate():
    source = ClipFormat(width=64, height=64, fps=8, frames=48)  # 6 s
    target = Presentation(width=64, height=64, fps=4, frames=8)  # 2 s

    assert frame_indices(source, target) == [16, 18, 20, 22, 24, 26, 28, 30]
    same_rate = Presentation(64, 64, 8, 48)
    assert frame_indices(source, same_rate) == list(range(48))


@pytest.mark.parametrize(
    ("size", "aspect", "box"),
    [((256, 256), 2 / 3, (42, 0, 213, 256)), ((1280, 720), 1.0, (280, 0, 1000, 720))],
)
def test_crops_are_centred(size, aspect, box):
    assert crop_box(*size, aspect) == box


def test_two_clips_of_different_formats_come_out_alike(tmp_path: Path):
    a = make_clip(tmp_path / "a.mp4", frames=8, width=256, height=256, fps=4)
    b = make_clip(tmp_path / "b.mp4", frames=49, width=480, height=720, fps=8, seed=1)
    target = common_presentation(ClipFormat(256, 256, 4, 8), ClipFormat(480, 720, 8, 49))
    assert target is not None

    shown = []
    for clip in (a, b):
        out = tmp_path / f"{clip.stem}-shown.mp4"
        present(clip, target, out, tmp_path / f"{clip.stem}.png")
        shown.append((probe(out), out.stat().st_size))

    (fa, size_a), (fb, size_b) = shown
    assert (fa.width, fa.height, fa.fps, fa.frames) == (fb.width, fb.height, fb.fps, fb.frames)
    assert (fa.width, fa.height, fa.fps, fa.frames) == (170, 254, 4.0, 8)
    assert not fa.has_audio and not fb.has_audio
    assert max(size_a, size_b) / min(size_a, size_b) < 2
