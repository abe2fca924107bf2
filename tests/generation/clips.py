"""Video files as other systems deliver them, made with the ffmpeg that imageio-ffmpeg ships."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_clip(
    path: Path,
    *,
    frames: int = 8,
    width: int = 64,
    height: int = 64,
    fps: int = 4,
    seed: int = 0,
    faststart: bool = False,
) -> Path:
    """An H.264 clip of a square crossing a gradient (yuv420p; its index at the end unless
    `faststart`, as most encoders leave it)."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(60, 255, 3)
    ramp = np.linspace(30, 200, width, dtype=np.float32)
    background = np.broadcast_to(ramp[None, :, None], (height, width, 3)).copy()
    video = np.repeat(background[None], frames, axis=0)
    side = max(4, min(width, height) // 4)
    for t in range(frames):
        x = int((width - side) * t / max(1, frames - 1))
        video[t, height // 3 : height // 3 + side, x : x + side] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
        *(["-movflags", "+faststart"] if faststart else []), str(path),
    ]  # fmt: skip
    subprocess.run(command, input=video.astype(np.uint8).tobytes(), check=True)
    return path


def make_audio_only(path: Path) -> Path:
    command = [
        ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
        "sine=frequency=440:duration=1", "-c:a", "aac", "-f", "mp4", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target
