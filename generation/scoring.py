"""Automatic scores for a generation batch (the Django side of generation/video/metrics.py).

Per video: faithfulness and attribute checks against its prompt. Per variant: the Fréchet
distance between its videos and real procedural videos for the same prompts, stored on each
of its videos as `frechet_variant` (None where its prompts do not name every attribute).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from generation.models import Video


@dataclass(frozen=True)
class VariantScores:
    variant: str
    videos: int
    faithfulness: float | None
    frechet: float | None


def score_batch(*, batch_id: int, checkpoint_root: Path | None = None) -> list[VariantScores]:
    import numpy as np

    from generation.video import checkpoints, metrics
    from generation.video.data import parse_prompt, reference_videos
    from generation.video.export import read_mp4

    root = checkpoints.checkpoint_dir(checkpoint_root)
    model, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)
    videos = list(
        Video.objects.filter(job__batch_id=batch_id)
        .select_related("job__prompt", "job__variant")
        .order_by("id")
    )
    by_variant: dict[str, list[Video]] = defaultdict(list)
    for video in videos:
        by_variant[video.job.variant.slug].append(video)
    results = []
    for slug, group in sorted(by_variant.items()):
        frames = [read_mp4(v.file.path) for v in group]
        prompts = [v.job.prompt.text for v in group]
        scores = metrics.score_videos(model, frames, prompts)
        complete = [i for i, p in enumerate(prompts) if None not in vars(parse_prompt(p)).values()]
        frechet = None
        if len(complete) >= 2:
            real = reference_videos([prompts[i] for i in complete], seed=0)
            frechet = metrics.frechet_distance(model, [frames[i] for i in complete], real.videos)
        for video, score in zip(group, scores, strict=True):
            video.scores = {
                **video.scores,
                **score.to_dict(),
                "classifier_version": version,
                "frechet_variant": frechet,
            }
        with transaction.atomic():
            Video.objects.bulk_update(group, ["scores"])
        judged = [s.faithfulness for s in scores if s.faithfulness is not None]
        results.append(
            VariantScores(
                variant=slug,
                videos=len(group),
                faithfulness=float(np.mean(judged)) if judged else None,
                frechet=frechet,
            )
        )
    return results
