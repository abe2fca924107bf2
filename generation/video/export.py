"""Browser-playable files from frames: H.264 yuv420p MP4 (Chromium here decodes it) + a poster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Videos this small are upscaled with nearest-neighbour so raters see pixels, not a blur.
MIN_DISPLAY_SIZE = 256


def display_scale(height: int, width: int) -> int:
    return max(1, -(-MIN_DISPLAY_SIZE // max(1, min(height, width))))


def upscale(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 → nearest-neighbour upscaled so the short side is ≥ MIN_DISPLAY_SIZE."""
    scale = display_scale(frames.shape[1], frames.shape[2])
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def write_mp4(frames: np.ndarray, path: str | Path, fps: int, *, crf: int = 18) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 yuv420p MP4 with the index up front
    (`crf`: x264's constant quality, 18 = visually lossless; higher is smaller)."""
    import imageio

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    frames = upscale(frames)
    writer = imageio.get_writer(
        str(path),
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=16,
        ffmpeg_params=["-movflags", "+faststart", "-crf", str(crf)],
        ffmpeg_log_level="error",
    )
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()


def write_poster(frame: np.ndarray, path: str | Path) -> None:
    """The first frame as a PNG, shown until the video can play."""
    from PIL import Image

    Image.fromarray(upscale(frame[None])[0]).save(str(path), format="PNG")


def read_mp4(path: str | Path) -> np.ndarray:
    """All frames of a video file as (T, H, W, 3) uint8 (what the scorer sees)."""
    import imageio

    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return np.stack([np.asarray(frame)[..., :3] for frame in reader.iter_data()])
    finally:
        reader.close()
