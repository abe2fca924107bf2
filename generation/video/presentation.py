"""One presentation for both clips of a pair, so that format never tells a rater who made what.

Both videos of a comparison are shown in the smaller of their two formats: centre-cropped to the
smaller aspect ratio and resized to the smaller frame, resampled to the lower frame rate, cut to
the shorter duration around the middle, and encoded with the same settings at one bitrate target
per pixel, without audio or metadata. Formats shown unmatched inflate win rates, so this is not
cosmetic: see docs/protocol.md.

`common_presentation(a, b)` picks the format from the two delivered files' formats;
`present` renders one clip in it. No Django here: raters/presentation.py reads the formats from
the video rows, decides when, and stores the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bits per pixel and frame of the shared bitrate target: about the rate x264 reaches at CRF 18 on
# the toy renders, so a matched clip looks like an unmatched one, and sizes follow the format.
BITS_PER_PIXEL = 0.15


@dataclass(frozen=True)
class ClipFormat:
    width: int
    height: int
    fps: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Presentation:
    """The shared format: size, rate and length of both clips, and the encoder's bitrate."""

    width: int
    height: int
    fps: int
    frames: int

    @property
    def bitrate(self) -> int:
        return max(20_000, round(BITS_PER_PIXEL * self.width * self.height * self.fps))

    def key(self) -> str:
        return f"{self.width}x{self.height}@{self.fps}x{self.frames}"


def common_presentation(a: ClipFormat, b: ClipFormat) -> Presentation | None:
    """The format both are shown in, or None when they already share one."""
    if a == b:
        return None
    aspect = min(a.width / a.height, b.width / b.height)
    # The smaller frame, at the common aspect ratio; even sides for yuv420p.
    widths = [min(c.width, round(c.height * aspect)) for c in (a, b)]
    width = _even(min(widths))
    height = _even(width / aspect)
    fps = min(a.fps, b.fps)
    seconds = min(a.seconds, b.seconds)
    frames = max(1, math.floor(seconds * fps + 1e-6))
    return Presentation(width=width, height=height, fps=fps, frames=frames)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def frame_indices(source: ClipFormat, target: Presentation) -> list[int]:
    """Which source frame shows at each target frame: a centred window of the target's length,
    sampled at the target's rate (the frame on screen at that time)."""
    start = (source.seconds - target.frames / target.fps) / 2
    return [
        min(source.frames - 1, max(0, math.floor((start + k / target.fps) * source.fps + 1e-6)))
        for k in range(target.frames)
    ]


def crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """The centred (left, top, right, bottom) box of `aspect` inside a width × height frame."""
    if width / height > aspect:
        keep = round(height * aspect)
        left = (width - keep) // 2
        return left, 0, left + keep, height
    keep = round(width / aspect)
    top = (height - keep) // 2
    return 0, top, width, top + keep


def present(source: str | Path, target: Presentation, mp4: str | Path, poster: str | Path) -> None:
    """Render the clip at `source` in `target`'s format: crop, resample, resize, encode."""
    from PIL import Image

    from .export import write_presented_mp4
    from .probe import read_frames

    found, frames = read_frames(source)
    fmt = ClipFormat(found.width, found.height, max(1, round(found.fps)), len(frames))
    box = crop_box(fmt.width, fmt.height, target.width / target.height)
    shown = []
    for index in frame_indices(fmt, target):
        image = Image.fromarray(frames[index]).crop(box)
        if image.size != (target.width, target.height):
            image = image.resize((target.width, target.height), Image.Resampling.LANCZOS)
        shown.append(np.asarray(image))
    stack = np.stack(shown)
    write_presented_mp4(stack, mp4, target.fps, bitrate=target.bitrate)
    Image.fromarray(stack[0]).save(str(poster), format="PNG")
