"""What a video file made elsewhere holds, checked by decoding it (PyAV, ffmpeg's libraries).

`probe(path, limits)` decodes every frame once (no colour conversion) so that a truncated or
corrupt file is caught before it is accepted, and returns its format; `read_frames` does the same
and also returns the frames as RGB. Every refusal is a `ProbeError` whose message is the reason
shown beside that file in the import report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


class ProbeError(ValueError):
    """A file that cannot be imported; the message says why, in a few words."""


@dataclass(frozen=True)
class Limits:
    max_seconds: float = 60.0
    max_pixels: int = 1920 * 1088  # one frame: 1080p, padded to the codec's 16-pixel blocks
    max_bytes: int = 500 * 1024 * 1024
    max_frames: int = 2000


@dataclass(frozen=True)
class VideoFormat:
    width: int
    height: int
    fps: float
    frames: int
    seconds: float
    codec: str
    has_audio: bool


def probe(path: str | Path, limits: Limits = Limits()) -> VideoFormat:
    """Decode `path` once and return its format, or raise ProbeError with the reason."""
    return decode(path, limits)[0]


def read_frames(path: str | Path, limits: Limits = Limits()) -> tuple[VideoFormat, np.ndarray]:
    """The format and all frames as (T, H, W, 3) uint8 RGB, checked as `probe` checks them."""
    found, frames = decode(path, limits, keep_frames=True)
    assert frames is not None
    return found, frames


def decode(
    path: str | Path, limits: Limits = Limits(), *, keep_frames: bool = False
) -> tuple[VideoFormat, np.ndarray | None]:
    import av

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty file (0 bytes)")
    if size > limits.max_bytes:
        raise ProbeError(f"{size / 1e6:.0f} MB is over the {limits.max_bytes / 1e6:.0f} MB limit")
    try:
        container = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is its refusal
        with path.open("rb") as handle:
            head = handle.read(12)
        if head[4:8] == b"ftyp":
            # An MP4 whose index (moov) is missing: typically a download cut short.
            raise ProbeError(f"a damaged or cut-short MP4 ({_short(exc)})") from exc
        raise ProbeError(f"not a video file ffmpeg can read ({_short(exc)})") from exc
    with container:
        try:
            return _inspect(container, limits, keep_frames)
        except ProbeError:
            raise
        except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is its refusal
            raise ProbeError(f"does not decode ({_short(exc)})") from exc


def _inspect(
    container: Any, limits: Limits, keep_frames: bool
) -> tuple[VideoFormat, np.ndarray | None]:
    import av

    if not container.streams.video:
        kind = "audio only" if container.streams.audio else "no streams at all"
        raise ProbeError(f"no video stream ({kind})")
    stream = container.streams.video[0]
    context = stream.codec_context
    if context is None:
        raise ProbeError("no decoder for its video stream")
    width, height = context.width, context.height
    if width * height > limits.max_pixels:
        raise ProbeError(f"{width}x{height} is larger than the {limits.max_pixels} pixel limit")
    rate = stream.average_rate or stream.guessed_rate or Fraction(0)
    frames = 0
    last_time = 0.0
    kept: list[np.ndarray] = []
    try:
        for frame in container.decode(stream):
            frames += 1
            if keep_frames:
                kept.append(frame.to_ndarray(format="rgb24"))
            if frame.time is not None:
                last_time = float(frame.time)
            if frames > limits.max_frames or last_time > limits.max_seconds:
                raise ProbeError(
                    f"longer than the limit ({limits.max_seconds:g} s, {limits.max_frames} frames)"
                )
    except av.error.FFmpegError as exc:
        raise ProbeError(f"does not decode after {frames} frames ({_short(exc)})") from exc
    if frames == 0:
        raise ProbeError("no frames could be decoded")
    if stream.frames and frames < stream.frames:
        raise ProbeError(f"truncated: {frames} of its {stream.frames} frames decode")
    fps = float(rate) if rate else frames / max(last_time, 1e-6)
    if not 0 < fps <= 240:
        raise ProbeError(f"frame rate {fps:g} is not usable")
    seconds = frames / fps
    if seconds > limits.max_seconds:
        raise ProbeError(f"{seconds:.1f} s is longer than the {limits.max_seconds:g} s limit")
    found = VideoFormat(
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        seconds=seconds,
        codec=context.name,
        has_audio=bool(container.streams.audio),
    )
    return found, np.stack(kept) if keep_frames else None


def _short(exc: BaseException) -> str:
    """The error in a few words, without the file's path (the report names the file)."""
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^\[Errno -?[0-9]+\] ", "", text)
    text = re.sub(r": '[^']*'$", "", text)
    return text[:160]
