"""A stand-in for the ML pipeline: frames made from (prompt, seed) in microseconds."""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from generation.video.pipeline import GeneratedVideo


@dataclass
class FakeGenerator:
    frames: int = 4
    size: int = 16
    fps: int = 4
    seconds_per_video: float = 0.0  # simulated model time
    calls: list[int] = field(default_factory=list)  # sampling batch size of each call
    fail_first: BaseException | None = None
    fail_always: BaseException | None = None

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[GeneratedVideo]:
        self.calls.append(len(prompts))
        if self.fail_always is not None:
            raise self.fail_always
        if self.fail_first is not None:
            error, self.fail_first = self.fail_first, None
            raise error
        started = time.perf_counter()
        if self.seconds_per_video:
            time.sleep(self.seconds_per_video * len(prompts))
        seconds = max((time.perf_counter() - started) / len(prompts), 1e-6)
        videos = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            rng = np.random.default_rng([seed, zlib.crc32(prompt.encode())])
            frames = rng.integers(0, 255, (self.frames, self.size, self.size, 3), dtype=np.uint8)
            videos.append(GeneratedVideo(frames=frames, fps=self.fps, seconds=seconds))
        return videos


def install(monkeypatch, generator: FakeGenerator) -> list[tuple[object, str, str]]:  # type: ignore[no-untyped-def]
    """Make `load_generator` return `generator`; returns the (config, device, precision) of
    each load."""
    loads: list[tuple[object, str, str]] = []

    def load_generator(
        config: object, device: str = "cpu", precision: str = "float32"
    ) -> FakeGenerator:
        loads.append((config, device, precision))
        return generator

    monkeypatch.setattr("generation.video.pipeline.load_generator", load_generator)
    return loads
