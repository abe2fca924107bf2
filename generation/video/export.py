"""Browser-playable files from frames: H.264 yuv420p MP4 (Chromium here decodes it) + a poster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Videos this small are upscaled with nearest-neighbour so raters see pixels, not a blur.
MIN_DISPLAY_SIZE = 256


# imageio brings every side of a delivered render up to a multiple of this (x264 macroblocks).
MACRO_BLOCK = 16


def delivered_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the MP4 that `write_mp4` makes from frames of this size."""
    scale = display_scale(height, width)

    def padded(side: int) -> int:
        return -(-side * scale // MACRO_BLOCK) * MACRO_BLOCK

    return padded(height), padded(width)


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
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    _write_h264(upscale(frames), path, fps, ["-crf", str(crf)], macro_block_size=MACRO_BLOCK)


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


def transcode(source: str | Path, mp4: str | Path, poster: str | Path, fps: int) -> None:
    """A file made elsewhere in the delivery format (H.264 yuv420p, CRF 18, index up front, no
    audio, `fps` frames a second, even sides) plus its first frame as a PNG, in one ffmpeg run."""
    import subprocess

    import imageio_ffmpeg

    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error",
        "-i", str(source), "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-r", str(fps),
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-movflags", "+faststart",
        str(mp4), "-frames:v", "1", "-map_metadata", "-1", str(poster),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not transcode it: {done.stderr.strip()[-300:]}")


def write_presented_mp4(frames: np.ndarray, path: str | Path, fps: int, *, bitrate: int) -> None:
    """Frames already in a pair's shared presentation, encoded at one bitrate target with the
    same settings for every clip (no upscaling, no metadata, no audio)."""
    rate = str(bitrate)
    limits = ["-b:v", rate, "-maxrate", str(bitrate * 2), "-bufsize", str(bitrate * 2)]
    _write_h264(frames, path, fps, ["-map_metadata", "-1", "-preset", "medium", *limits])


def _write_h264(
    frames: np.ndarray, path: str | Path, fps: int, params: list[str], *, macro_block_size: int = 2
) -> None:
    """(T, H, W, 3) uint8 frames as H.264 yuv420p with the index up front, through ffmpeg."""
    import imageio

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    writer = imageio.get_writer(
        str(path),
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=macro_block_size,
        quality=None,  # rate control comes from `params` alone
        ffmpeg_params=["-movflags", "+faststart", *params],
        ffmpeg_log_level="error",
    )
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()
