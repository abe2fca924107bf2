"""Degraded copies of real videos for hidden gold comparisons: the degraded side should lose.

Pure numpy on (T, H, W, 3) uint8 frames; reading and writing MP4s goes through imageio-ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLUR_PASSES = 3


def frozen(frames: np.ndarray) -> np.ndarray:
    """Every frame replaced by the first one: no motion at all."""
    return np.repeat(frames[:1], len(frames), axis=0)


def _box_blur(image: np.ndarray, radius: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius + 1, radius)
    padded = np.pad(image.astype(np.float32), pad, mode="edge")
    summed = np.cumsum(padded, axis=axis)
    size = image.shape[axis]
    upper = np.take(summed, np.arange(2 * radius + 1, 2 * radius + 1 + size), axis=axis)
    lower = np.take(summed, np.arange(0, size), axis=axis)
    blurred: np.ndarray = (upper - lower) / (2 * radius + 1)
    return blurred


def blurred(frames: np.ndarray, *, radius: int | None = None) -> np.ndarray:
    """Heavy blur: three box passes (close to a Gaussian) with a radius of 1/12 of the width."""
    radius = radius or max(2, frames.shape[2] // 12)
    out = frames.astype(np.float32)
    for _ in range(BLUR_PASSES):
        out = _box_blur(_box_blur(out, radius, axis=1), radius, axis=2)
    result: np.ndarray = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return result


def shuffled(frames: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Frames in a random order (never the original order when there are two or more)."""
    if len(frames) < 2:
        return frames.copy()
    order = rng.permutation(len(frames))
    if np.array_equal(order, np.arange(len(frames))):
        order = order[::-1]
    return frames[order]


def read_frames(path: str | Path) -> tuple[np.ndarray, int]:
    """(T, H, W, 3) uint8 frames and the frame rate of a video file."""
    import imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        fps = int(round(reader.get_meta_data().get("fps", 8)))
        frames = np.stack([np.asarray(frame)[..., :3] for frame in reader.iter_data()])
    finally:
        reader.close()
    return frames.astype(np.uint8), max(1, fps)
