"""Building a study's hidden gold comparisons: a real video against a degraded copy of it (or,
for faithfulness, against a video of another prompt), whose degraded side should lose.

This is the file work: reading stored videos, degrading their frames (raters.gold, pure
numpy), writing the copies at the byte sizes of the clips they stand beside, and saving the
gold clips and comparisons. Scoring the answers is raters.judgments' business.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction

from generation.models import Video

from . import gold
from .models import Comparison, GoldClip, Study


def build_gold_comparisons(*, study: Study, count: int = 8, seed: int = 0) -> int:
    """Make up to `count` gold comparisons from the study's real ones; how many were made.

    Degradations rotate through frozen frames, heavy blur, shuffled frames and other prompt.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    reals = list(
        study.comparisons.filter(kind=Comparison.Kind.REAL).select_related("video_a", "video_b")
    )
    if not reals:
        return 0
    order = rng.permutation(len(reals))[: max(0, count)]
    kinds = list(GoldClip.Degradation)
    with tempfile.TemporaryDirectory() as tmp:
        for index, real_index in enumerate(order):
            source = reals[int(real_index)]
            others = [c for c in reals if c.prompt_id != source.prompt_id]
            degradation = kinds[index % len(kinds)]
            if degradation == GoldClip.Degradation.OTHER_PROMPT and not others:
                degradation = GoldClip.Degradation.FROZEN
            _make_gold(
                study=study,
                source=source,
                others=others,
                degradation=degradation,
                rng=rng,
                workdir=Path(tmp) / str(index),
            )
    return len(order)


def _make_gold(
    *,
    study: Study,
    source: Comparison,
    others: list[Comparison],
    degradation: str,
    rng: Any,
    workdir: Path,
) -> None:
    """One gold comparison: a random side of `source` against its degraded partner."""
    workdir.mkdir()
    good = source.video_a if rng.random() < 0.5 else source.video_b
    partner = source.video_b if good == source.video_a else source.video_a
    if degradation == GoldClip.Degradation.OTHER_PROMPT:
        bad_source = others[int(rng.integers(len(others)))].video_a
        frames, fps = _read_video(bad_source, workdir)
    else:
        bad_source = good
        frames, fps = _read_video(good, workdir)
        if degradation == GoldClip.Degradation.FROZEN:
            frames = gold.frozen(frames)
        elif degradation == GoldClip.Degradation.BLUR:
            frames = gold.blurred(frames)
        else:
            frames = gold.shuffled(frames, rng=rng)
    out, poster = workdir / "gold.mp4", workdir / "gold.png"
    # Written like the real video it replaces (the partner), at its byte sizes: file
    # statistics must not tell a gold check from a real comparison.
    gold.write_sized_mp4(frames, out, fps=min(fps, good.fps), size=_size(partner.file))
    gold.write_sized_poster(frames[0], poster, size=_size(partner.poster))
    with transaction.atomic():
        clip = GoldClip(source=bad_source, degradation=degradation)
        clip.file.save("clip.mp4", ContentFile(out.read_bytes()), save=False)
        clip.poster.save("clip.png", ContentFile(poster.read_bytes()), save=False)
        clip.save()
        Comparison.objects.create(
            study=study,
            pair=source.pair,
            kind=Comparison.Kind.GOLD,
            prompt=source.prompt,
            video_a=good,
            video_b=partner,
            gold_clip=clip,
            gold_question="faithfulness"
            if degradation == GoldClip.Degradation.OTHER_PROMPT
            else "quality",
        )


def _read_video(video: Video, tmp: Path) -> tuple[Any, int]:
    """A stored video's frames at the size its model made them (see gold.native_frames)."""
    path = tmp / f"source-{video.pk}.mp4"
    with video.file.open("rb") as handle:
        path.write_bytes(handle.read())
    frames, fps = gold.read_frames(path)
    return gold.native_frames(frames, height=video.height, width=video.width), fps


def _size(field: Any) -> int:
    try:
        return int(field.size) if field else 0
    except OSError:
        return 0
