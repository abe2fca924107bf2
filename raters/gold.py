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


def native_frames(frames: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Frames of a stored video at the size the model made them.

    Stored videos are upscaled with nearest-neighbour (generation.video.export): each model
    pixel is a block. Averaging the blocks undoes that, and the decoder's noise with it, so a
    degraded copy is written through the same pipeline as real videos and compresses like them.
    """
    t, h, w, c = frames.shape
    if height <= 0 or width <= 0 or h % height or w % width or (h, w) == (height, width):
        return frames
    blocks = frames.reshape(t, height, h // height, width, w // width, c).astype(np.float32)
    native: np.ndarray = np.clip(blocks.mean(axis=(2, 4)) + 0.5, 0, 255).astype(np.uint8)
    return native


def pad_mp4(path: str | Path, size: int) -> int:
    """Grow an MP4 to `size` bytes with a trailing `free` box (players skip it); the new size."""
    path = Path(path)
    missing = size - path.stat().st_size
    if missing >= 8:
        with path.open("ab") as handle:
            handle.write(missing.to_bytes(4, "big") + b"free" + bytes(missing - 8))
    return path.stat().st_size


def pad_png(path: str | Path, size: int) -> int:
    """Grow a PNG to `size` bytes with a private ancillary chunk before IEND (viewers skip
    chunks they do not know whose name starts in lower case); the new size."""
    import zlib

    path = Path(path)
    data = path.read_bytes()
    missing = size - len(data)
    if missing >= 12 and data.endswith(b"IEND\xaeB`\x82"):
        body = bytes(missing - 12)
        chunk = (
            len(body).to_bytes(4, "big")
            + b"juPd"
            + body
            + zlib.crc32(b"juPd" + body).to_bytes(4, "big")
        )
        path.write_bytes(data[:-12] + chunk + data[-12:])
    return path.stat().st_size


def write_sized_mp4(frames: np.ndarray, path: str | Path, *, fps: int, size: int) -> int:
    """Write native-size frames as real videos are written, at `size` bytes where possible:
    re-encoded at lower quality until no larger, then padded up (pad_mp4). Returns the size.

    A degraded clip (a frozen one most of all) compresses far smaller than the real video it
    stands in for; with the real partner's size a rater's browser cannot tell them apart by
    bytes.
    """
    from generation.video.export import write_mp4

    for crf in (18, 23, 28, 33, 38, 45, 51):
        write_mp4(frames, path, fps=fps, crf=crf)
        if Path(path).stat().st_size <= size:
            break
    return pad_mp4(path, size)


def write_sized_poster(frame: np.ndarray, path: str | Path, *, size: int) -> int:
    """A poster written as real ones are (generation.video.export.write_poster), at `size`
    bytes where possible: fewer bits per channel until no larger, then padded (pad_png)."""
    from PIL import Image, ImageOps

    from generation.video.export import write_poster

    write_poster(frame, path)
    image = Image.open(path)
    image.load()
    for bits in (7, 6, 5, 4, 3, 2, 1):
        if Path(path).stat().st_size <= size:
            break
        ImageOps.posterize(image, bits).save(str(path), format="PNG")
    return pad_png(path, size)
