"""`manage.py model_gallery` on tiny trained checkpoints: a strip per variant, same prompt, seed."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image, ImageDraw

from generation.video import temporal_decoding
from generation.video.gallery import GalleryRow, compose, shipped_variants
from generation.video.training import VideoRecipe, tiny_plan, train_variants


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gallery-ckpt")
    plan = replace(tiny_plan(), recipes=(VideoRecipe(), VideoRecipe(mode="direct")))
    train_variants(
        seed=0,
        out_dir=out,
        state_dir=tmp_path_factory.mktemp("gallery-state"),
        plan=plan,
        only=frozenset({VideoRecipe().name, VideoRecipe(mode="direct").name}),
        progress=False,
        log=lambda _: None,
    )
    return out


def _strips(path: Path, rows: int, frames: int, size: int, scale: int) -> list[np.ndarray]:
    image = np.asarray(Image.open(path).convert("RGB"))
    line, gap = 14, 2
    label_w = image.shape[1] - frames * (size * scale + gap)  # as wide as the longest name
    assert label_w >= 230
    assert image.shape == (2 * line + rows * (size * scale + gap), image.shape[1], 3)
    return [
        image[2 * line + i * (size * scale + gap) :][: size * scale, label_w:] for i in range(rows)
    ]


def _draw(root: Path, out: Path) -> None:
    """model_gallery at the tiny size: one DDIM step, frames at their own size."""
    call_command(
        "model_gallery",
        "--checkpoints",
        str(root),
        "--output",
        str(out),
        "--steps",
        "1",
        "--scale",
        "1",
        stdout=io.StringIO(),
    )


def test_the_gallery_has_one_strip_per_trained_variant(tiny_checkpoints, tmp_path):  # type: ignore[no-untyped-def]
    # when the command runs on two trained variants at a tiny size
    out = tmp_path / "gallery.png"
    _draw(tiny_checkpoints, out)
    # then the PNG holds two strips of 4 frames of 16 px, and they differ (different variants)
    first, second = _strips(out, rows=2, frames=4, size=16, scale=1)
    assert not np.array_equal(first, second)
    # and the same prompt and seed give the same picture again
    again = tmp_path / "again.png"
    _draw(tiny_checkpoints, again)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_the_gallery_says_when_nothing_is_trained(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="No trained video checkpoints"):
        call_command(
            "model_gallery", "--checkpoints", str(tmp_path), "--output", str(tmp_path / "g.png")
        )


def test_the_default_is_shown_again_as_the_showcase_renders_it(tiny_checkpoints, tmp_path):  # type: ignore[no-untyped-def]
    # given the two variants and a temporal decoder that changes the latents
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, root)
    model = temporal_decoding.build(4, width=8)
    with torch.no_grad():
        model.net[-1].bias.fill_(0.5)
    temporal_decoding.save(model, root / temporal_decoding.FOLDER, {"recipe": {"steps": 1}})
    # when the gallery is drawn
    out = tmp_path / "gallery.png"
    _draw(root, out)
    # then a third strip shows the default with it, unlike the default without
    variants = shipped_variants(root, steps=1)
    names = [name for name, _ in variants]
    assert names[-1] == f"{VideoRecipe().name}, temporal decoding + filter"
    assert variants[-1][1].temporal_decoding and variants[-1][1].temporal_filter == 16
    strips = _strips(out, rows=3, frames=4, size=16, scale=1)
    assert names.index(VideoRecipe().name) in (0, 1)
    assert not np.array_equal(strips[names.index(VideoRecipe().name)], strips[2])


def test_a_long_variant_name_is_shown_whole_beside_its_strip():
    name = "factorized-zero_snr-frozen, temporal decoding + filter, and a little more"
    white = np.full((4, 16, 16, 3), 255, dtype=np.uint8)
    image = compose([GalleryRow(name=name, frames=white)], prompt="p", seed=0, scale=1)
    label = image[28:44, : image.shape[1] - 4 * (16 + 2)]  # the row's label column
    # the name alone, drawn as compose draws it, on a canvas wide enough for any name
    alone = Image.new("RGB", (1000, 16), (255, 255, 255))
    ImageDraw.Draw(alone).text((4, 16 // 2 - 6), name, fill=(0, 0, 0))
    dark = (np.asarray(alone) < 128).all(axis=-1).sum()
    assert dark > 0 and (label < 128).all(axis=-1).sum() == dark
