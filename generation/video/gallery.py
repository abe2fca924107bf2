"""A gallery of the built-in family: one frame strip per trained variant, same prompt and seed.

Every video checkpoint in a checkpoint folder (its card's `config`) renders the same prompt with
the same seed, and the default once more as the showcase renders it (temporal decoding and the
temporal filter) where a temporal decoder is trained; the strips are stacked under each other
with the variant's name on the left, so what an ablation changes can be seen before anyone
rates it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import checkpoints, temporal_decoding
from .config import SHOWCASE, ConfigError, VariantConfig


@dataclass(frozen=True)
class GalleryRow:
    name: str  # the checkpoint's name, e.g. video-factorized-zero_snr-frozen
    frames: np.ndarray  # (T, H, W, 3) uint8


def shipped_variants(root: Path, *, steps: int) -> list[tuple[str, VariantConfig]]:
    """One config per video checkpoint in `root`, at the size and length it was trained for."""
    found = []
    for folder in sorted(root.glob("video-*")):
        card = checkpoints.read_card(folder)
        if card.get("kind") != "video" or "config" not in card:
            continue
        size = int(card.get("image_size", 32))
        config = VariantConfig.from_dict(
            {
                **card["config"],
                "height": size,
                "width": size,
                "frames": int(card.get("frames", 8)),
                "steps": steps,
            }
        )
        found.append((folder.name, config))
    # The default once more with temporal decoding and the temporal filter, where a temporal
    # decoder is trained.
    try:
        temporal_decoding.check(root)
    except ConfigError:
        return found
    default = checkpoints.recipe_checkpoint_name(VariantConfig())
    return found + [
        (
            f"{name}, temporal decoding + filter",
            replace(config, **{**SHOWCASE, "interpolation": False}),  # strips of 8 frames
        )
        for name, config in found
        if name == default
    ]


def render_rows(
    variants: list[tuple[str, VariantConfig]],
    *,
    prompt: str,
    seed: int,
    root: Path,
    device: str = "cpu",
) -> list[GalleryRow]:
    from .pipeline import EmuVideoGenerator

    rows = []
    for name, config in variants:
        generator = EmuVideoGenerator(config, device, checkpoint_root=root)
        video = generator.generate([prompt], [seed])[0]
        rows.append(GalleryRow(name=name, frames=video.frames))
    return rows


def compose(rows: list[GalleryRow], *, prompt: str, seed: int, scale: int = 2) -> np.ndarray:
    """(H, W, 3) uint8: a title line, then per row the name and the frames left to right."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("no variants to show")
    h, w = rows[0].frames.shape[1:3]
    fh, fw, gap, line = h * scale, w * scale, 2, 14
    names = [row.name.removeprefix("video-") for row in rows]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(230, 12 + max(int(measure.textlength(name)) for name in names))
    frames = max(r.frames.shape[0] for r in rows)
    width = label_w + frames * (fw + gap)
    height = 2 * line + len(rows) * (fh + gap)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), f'"{prompt}", seed {seed}', fill=(0, 0, 0))
    draw.text(
        (label_w, line), "frame 0 (the T2I image in factorized variants) ... last", fill=(90,) * 3
    )
    for i, (row, name) in enumerate(zip(rows, names, strict=True)):
        top = 2 * line + i * (fh + gap)
        draw.text((4, top + fh // 2 - 6), name, fill=(0, 0, 0))
        for t, frame in enumerate(row.frames):
            tile = Image.fromarray(frame).resize((fw, fh), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_w + t * (fw + gap), top))
    return np.asarray(canvas)


def write_gallery(
    output: Path,
    *,
    prompt: str,
    seed: int,
    root: Path,
    steps: int = 10,
    scale: int = 2,
    device: str = "cpu",
) -> list[GalleryRow]:
    """Render every trained variant in `root` and write the strips to `output` (PNG)."""
    import os

    from PIL import Image

    variants = shipped_variants(root, steps=steps)
    if not variants:
        raise ValueError(f"No trained video checkpoints in {root} (run manage.py train_variants).")
    rows = render_rows(variants, prompt=prompt, seed=seed, root=root, device=device)
    image = compose(rows, prompt=prompt, seed=seed, scale=scale)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    # A 256-colour palette keeps the README's copy small (flat shapes lose nothing visible).
    Image.fromarray(image).quantize(colors=256).save(tmp, format="PNG", optimize=True)
    os.replace(tmp, output)
    return rows
