"""A small rated study in the database, with known answers, for the Django-side tests."""

from __future__ import annotations

import numpy as np
from django.core.files.base import ContentFile

from generation.models import ModelVariant
from raters.models import Assignment, Comparison, Rater, Study
from tests.factories import (
    AssignmentFactory,
    JudgmentFactory,
    ModelVariantFactory,
    PromptFactory,
    StudyFactory,
    UserFactory,
    VariantPairFactory,
    VideoFactory,
)

PAIRS = (("emu", "direct-t2v"), ("emu", "standard-schedule"))


def build_study(
    *, prompts: int = 3, raters: int = 5, seed: int = 0, slug: str = "ablation"
) -> Study:
    """`PAIRS` × `prompts` comparisons, each judged by the same `raters` users (rater 0 flagged).

    A wins quality when the prompt index is even (4 of 5 votes), faithfulness always 3–2.
    """
    rng = np.random.default_rng(seed)
    study = StudyFactory(slug=slug)
    variants = {
        name: ModelVariant.objects.filter(slug=name).first()
        or ModelVariantFactory(slug=name, name=name)
        for name in {s for p in PAIRS for s in p}
    }
    users = [UserFactory() for _ in range(raters)]
    Rater.objects.create(user=users[0], is_flagged=True, flagged_reason="gold accuracy")
    prompt_rows = [PromptFactory(prompt_set=study.batches.get().prompt_set) for _ in range(prompts)]
    videos = {
        (name, p): VideoFactory(
            job__batch=study.batches.get(),
            job__variant=variant,
            job__prompt=prompt,
            file=ContentFile(b"not decoded here", name="v.mp4"),
        )
        for name, variant in variants.items()
        for p, prompt in enumerate(prompt_rows)
    }
    for a, b in PAIRS:
        pair = VariantPairFactory(study=study, variant_a=variants[a], variant_b=variants[b])
        for p, prompt in enumerate(prompt_rows):
            comparison = Comparison.objects.create(
                study=study, pair=pair, prompt=prompt, video_a=videos[a, p], video_b=videos[b, p]
            )
            quality = "aaaab" if p % 2 == 0 else "abbbb"
            for k, user in enumerate(users):
                assignment = AssignmentFactory(
                    comparison=comparison,
                    rater=user,
                    left_is_a=bool(rng.integers(0, 2)),
                    status=Assignment.Status.DONE,
                )
                JudgmentFactory(
                    assignment=assignment,
                    quality=quality[k],
                    faithfulness="aaabb"[k],
                    is_flagged=k == 0,
                    time_spent_ms=1000 * (k + 1),
                )
    return study
