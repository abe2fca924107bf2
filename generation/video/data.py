"""Procedural text–video data: coloured shapes that move, grow or shrink, captioned from the
same attributes that draw them. Seeded per sample, so any size and any slice is reproducible.

Some (colour, shape, motion) combinations never appear in training (`is_held_out`); the
evaluation prompts use exactly those, so a model must compose attributes it saw separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (240, 215, 40),
    "purple": (150, 60, 200),
    "white": (240, 240, 240),
}
# Backgrounds: every shape colour plus two neutral ones (never the shape's own colour).
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    **COLOURS,
    "black": (15, 15, 15),
    "gray": (120, 120, 120),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grows", "shrinks")
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)

# Phrasings of the motion part; the first is the canonical one (the demo's wording).
_MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("moves left", "moving to the left", "slides left"),
    "right": ("moves right", "moving to the right", "slides right"),
    "up": ("moves up", "moving upwards", "rises"),
    "down": ("moves down", "moving downwards", "falls"),
    "grows": ("grows", "growing bigger", "gets larger"),
    "shrinks": ("shrinks", "getting smaller", "gets smaller"),
}
_TEMPLATES: tuple[str, ...] = (
    "a {colour} {shape} {motion} on a {background} background",
    "{colour} {shape} {motion}, {background} background",
    "on a {background} background, a {colour} {shape} {motion}",
)
# Words a free-text prompt may use for each attribute (used to score faithfulness).
_MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("left",),
    "right": ("right",),
    "up": (" up", "upward", "rises", "rising", "ascend"),
    "down": ("down", "falls", "falling", "descend", "sinks"),
    "grows": ("grow", "bigger", "larger", "expand"),
    "shrinks": ("shrink", "smaller", "contract"),
}


@dataclass(frozen=True)
class Attributes:
    colour: int  # index into COLOUR_NAMES
    shape: int  # index into SHAPES
    motion: int  # index into MOTIONS
    background: int  # index into BACKGROUND_NAMES

    def caption(self, template: int = 0, phrase: int = 0) -> str:
        return _TEMPLATES[template % len(_TEMPLATES)].format(
            colour=COLOUR_NAMES[self.colour],
            shape=SHAPES[self.shape],
            motion=_MOTION_PHRASES[MOTIONS[self.motion]][phrase % 3],
            background=BACKGROUND_NAMES[self.background],
        )


@dataclass(frozen=True)
class ParsedPrompt:
    """Attributes named by a prompt; None where the prompt does not name one."""

    colour: int | None
    shape: int | None
    motion: int | None
    background: int | None


@dataclass(frozen=True)
class VideoSet:
    videos: np.ndarray  # (N, T, H, W, 3) uint8
    captions: tuple[str, ...]
    labels: np.ndarray  # (N, 4) int64: colour, shape, motion, background
    speed: np.ndarray  # (N,) distance travelled or size change, as a fraction of the frame


def is_held_out(colour: int, shape: int, motion: int) -> bool:
    """One (colour, shape, motion) triple in six is reserved for evaluation; each single
    attribute value still appears in training with other partners."""
    return (colour + 2 * shape + motion) % 6 == 0


def held_out_attributes() -> list[Attributes]:
    """Every held-out combination, with two backgrounds each (deterministic)."""
    out = []
    for c in range(len(COLOUR_NAMES)):
        for s in range(len(SHAPES)):
            for m in range(len(MOTIONS)):
                if not is_held_out(c, s, m):
                    continue
                backgrounds = [b for b in range(len(BACKGROUND_NAMES)) if b != c]
                for k in (0, 3):
                    out.append(Attributes(c, s, m, backgrounds[(c + s + m + k) % len(backgrounds)]))
    return out


def held_out_prompts() -> list[str]:
    return [attrs.caption() for attrs in held_out_attributes()]


def parse_prompt(text: str) -> ParsedPrompt:
    """Find the colour, shape, motion and background a free-text prompt names."""
    lowered = " " + text.lower().replace(",", " ") + " "
    background = None
    shape_colour_part = lowered
    if "background" in lowered:
        before = lowered[: lowered.index("background")].split()
        if before and before[-1] in BACKGROUND_NAMES:
            background = BACKGROUND_NAMES.index(before[-1])
            # Drop the background colour so it is not mistaken for the shape's colour.
            cut = lowered.index("background")
            head = lowered[:cut].rsplit(before[-1], 1)[0]
            shape_colour_part = head + lowered[cut:]
    colour = _first_word(shape_colour_part, COLOUR_NAMES)
    shape = _first_word(lowered, SHAPES)
    motion = None
    for index, name in enumerate(MOTIONS):
        if any(word in lowered for word in _MOTION_WORDS[name]):
            motion = index
            break
    return ParsedPrompt(colour, shape, motion, background)


def _first_word(text: str, names: Sequence[str]) -> int | None:
    best: tuple[int, int] | None = None
    for index, name in enumerate(names):
        pos = text.find(f" {name}")
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, index)
    return None if best is None else best[1]


def sample_attributes(rng: np.random.Generator, split: str) -> Attributes:
    """Draw attributes from the training split (`train`) or the held-out one (`heldout`)."""
    while True:
        c = int(rng.integers(len(COLOUR_NAMES)))
        s = int(rng.integers(len(SHAPES)))
        m = int(rng.integers(len(MOTIONS)))
        if is_held_out(c, s, m) == (split == "heldout"):
            break
    b = int(rng.integers(len(BACKGROUND_NAMES) - 1))
    b = b + 1 if b >= c else b
    return Attributes(c, s, m, b)


def render(
    attrs: Attributes,
    rng: np.random.Generator,
    *,
    size: int = 32,
    times: Sequence[float] | np.ndarray | None = None,
    frames: int = 8,
    speed: float | None = None,
) -> tuple[np.ndarray, float]:
    """Draw one video (T, size, size, 3) uint8 at the given times in [0, 1], 2× supersampled."""
    t = np.linspace(0.0, 1.0, frames) if times is None else np.asarray(times, dtype=np.float64)
    speed = float(rng.uniform(0.3, 0.55)) if speed is None else speed
    motion = MOTIONS[attrs.motion]
    x0, y0 = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    radius = np.full_like(t, rng.uniform(0.16, 0.21))
    x = np.full_like(t, x0)
    y = np.full_like(t, y0)
    travel = (t - 0.5) * speed
    if motion == "left":
        x = x0 - travel
    elif motion == "right":
        x = x0 + travel
    elif motion == "up":
        y = y0 - travel
    elif motion == "down":
        y = y0 + travel
    elif motion == "grows":
        radius = 0.08 + t * speed * 0.5
    else:
        radius = 0.08 + (1 - t) * speed * 0.5
    fine = size * 2
    coords = (np.arange(fine) + 0.5) / fine
    gy, gx = np.meshgrid(coords, coords, indexing="ij")
    dx = gx[None] - x[:, None, None]
    dy = gy[None] - y[:, None, None]
    r = radius[:, None, None]
    shape = SHAPES[attrs.shape]
    if shape == "circle":
        inside = dx**2 + dy**2 <= r**2
    elif shape == "square":
        inside = np.maximum(np.abs(dx), np.abs(dy)) <= r * 0.85
    else:
        # Upward triangle: apex at -r, base at +0.8r, half-width r at the base.
        depth = (dy + r) / (1.8 * r)
        inside = (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= depth * r)
    fg = np.array(COLOURS[COLOUR_NAMES[attrs.colour]], dtype=np.float32)
    bg = np.array(BACKGROUNDS[BACKGROUND_NAMES[attrs.background]], dtype=np.float32)
    alpha = inside.astype(np.float32)
    alpha = alpha.reshape(len(t), size, 2, size, 2).mean(axis=(2, 4))[..., None]
    video = alpha * fg + (1 - alpha) * bg
    return np.clip(video.round(), 0, 255).astype(np.uint8), speed


def make_video_set(
    count: int,
    *,
    seed: int,
    split: str = "train",
    size: int = 32,
    frames: int = 8,
    time_span: float = 1.0,
    varied_captions: bool = True,
    start: int = 0,
) -> VideoSet:
    """`count` videos; sample i depends only on (seed, split, start + i).

    `time_span` < 1 renders a shorter stretch of the same motion (a higher frame rate).
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    videos = np.empty((count, frames, size, size, 3), dtype=np.uint8)
    captions: list[str] = []
    labels = np.empty((count, 4), dtype=np.int64)
    speeds = np.empty(count, dtype=np.float32)
    offset = 0.5 - time_span / 2
    times = offset + np.linspace(0.0, time_span, frames)
    split_id = 0 if split == "train" else 1
    for i in range(count):
        rng = np.random.default_rng([seed, split_id, start + i])
        attrs = sample_attributes(rng, split)
        videos[i], speeds[i] = render(attrs, rng, size=size, times=times)
        template = int(rng.integers(len(_TEMPLATES))) if varied_captions else 0
        phrase = int(rng.integers(3)) if varied_captions else 0
        captions.append(attrs.caption(template, phrase))
        labels[i] = (attrs.colour, attrs.shape, attrs.motion, attrs.background)
    return VideoSet(videos=videos, captions=tuple(captions), labels=labels, speed=speeds)


def reference_videos(
    prompts: Sequence[str], *, seed: int, size: int = 32, frames: int = 8
) -> VideoSet:
    """Real videos for given prompts (for Fréchet distances); prompts must name all attributes."""
    videos = np.empty((len(prompts), frames, size, size, 3), dtype=np.uint8)
    labels = np.empty((len(prompts), 4), dtype=np.int64)
    speeds = np.empty(len(prompts), dtype=np.float32)
    for i, prompt in enumerate(prompts):
        parsed = parse_prompt(prompt)
        values = (parsed.colour, parsed.shape, parsed.motion, parsed.background)
        if any(v is None for v in values):
            raise ValueError(
                f"prompt does not name colour, shape, motion and background: {prompt!r}"
            )
        attrs = Attributes(*(int(v) for v in values if v is not None))
        rng = np.random.default_rng([seed, 2, i])
        videos[i], speeds[i] = render(attrs, rng, size=size, frames=frames)
        labels[i] = (attrs.colour, attrs.shape, attrs.motion, attrs.background)
    return VideoSet(videos=videos, captions=tuple(prompts), labels=labels, speed=speeds)
