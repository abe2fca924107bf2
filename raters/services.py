"""Writes for rating: building studies, assigning comparisons, recording JUICE judgments."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from generation.models import GenerationBatch, ModelVariant, Video

from . import juice
from .models import Assignment, Comparison, Judgment, Study, VariantPair


@transaction.atomic
def create_study(
    *,
    name: str,
    slug: str,
    batch: GenerationBatch,
    pairs: Sequence[tuple[ModelVariant, ModelVariant]],
    raters_per_pair: int = 5,
    allow_ties: bool = True,
) -> Study:
    """A study with one comparison per (pair, prompt, seed) whose two videos both exist."""
    if raters_per_pair < 1:
        raise ValidationError("raters_per_pair must be at least 1.")
    study = Study.objects.create(
        name=name,
        slug=slug,
        batch=batch,
        raters_per_pair=raters_per_pair,
        allow_ties=allow_ties,
    )
    for variant_a, variant_b in pairs:
        pair = VariantPair.objects.create(study=study, variant_a=variant_a, variant_b=variant_b)
        add_comparisons(pair=pair)
    return study


def add_comparisons(*, pair: VariantPair) -> int:
    """Pair up the finished videos of both variants by (prompt, seed); skip ones already there."""
    videos = Video.objects.filter(
        job__batch=pair.study.batch, job__variant__in=[pair.variant_a, pair.variant_b]
    ).select_related("job")
    by_key: dict[tuple[int, int], dict[int, Video]] = {}
    for video in videos:
        by_key.setdefault((video.job.prompt_id, video.job.seed), {})[video.job.variant_id] = video
    existing = set(pair.comparisons.values_list("video_a_id", "video_b_id"))
    new = [
        Comparison(
            study=pair.study,
            pair=pair,
            prompt_id=prompt_id,
            video_a=sides[pair.variant_a_id],
            video_b=sides[pair.variant_b_id],
        )
        for (prompt_id, _seed), sides in sorted(by_key.items())
        if pair.variant_a_id in sides
        and pair.variant_b_id in sides
        and (sides[pair.variant_a_id].id, sides[pair.variant_b_id].id) not in existing
    ]
    Comparison.objects.bulk_create(new)
    return len(new)


def next_assignment(*, study: Study, rater: Any) -> Assignment | None:
    """The rater's open assignment, or a new one on a comparison that still needs raters."""
    open_one = (
        Assignment.objects.filter(
            rater=rater, comparison__study=study, status=Assignment.Status.ACTIVE
        )
        .order_by("id")
        .first()
    )
    if open_one is not None:
        return open_one
    for _attempt in range(5):
        candidate = (
            Comparison.objects.filter(study=study)
            .exclude(assignments__rater=rater)
            .annotate(
                taken=Count(
                    "assignments",
                    filter=~Q(assignments__status=Assignment.Status.EXPIRED),
                )
            )
            .filter(taken__lt=study.raters_per_pair)
            .order_by("taken", "id")
            .first()
        )
        if candidate is None:
            return None
        try:
            with transaction.atomic():
                return Assignment.objects.create(
                    comparison=candidate, rater=rater, left_is_a=random.random() < 0.5
                )
        except IntegrityError:
            continue
    return None


@dataclass(frozen=True)
class Answer:
    """One question's answer as the rater gave it: 'left', 'right' or 'tie' plus reasons."""

    side: str
    reasons: tuple[str, ...]


def check_answer(*, study: Study, question: str, answer: Answer) -> str:
    """Validate one JUICE answer and return it in A/B terms… given left_is_a by the caller."""
    if answer.side not in ("left", "right", "tie"):
        raise ValidationError({question: "Choose the left video, the right video or a tie."})
    if answer.side == "tie" and not study.allow_ties:
        raise ValidationError({question: "This study asks for a choice: ties are not allowed."})
    if not answer.reasons:
        raise ValidationError({question: "Pick at least one reason for your choice."})
    choice = "tie" if answer.side == "tie" else answer.side
    allowed = juice.allowed_reasons(question, choice)
    unknown = [r for r in answer.reasons if r not in allowed]
    if unknown:
        raise ValidationError({question: f"Unknown reason for this choice: {', '.join(unknown)}."})
    if len(set(answer.reasons)) != len(answer.reasons):
        raise ValidationError({question: "A reason was given twice."})
    return answer.side


def _to_ab(side: str, left_is_a: bool) -> str:
    if side == "tie":
        return Judgment.Choice.TIE
    return Judgment.Choice.A if (side == "left") == left_is_a else Judgment.Choice.B


def submit_judgment(
    *,
    assignment: Assignment,
    quality: Answer,
    faithfulness: Answer,
    time_spent_ms: int = 0,
) -> Judgment:
    """Record a justified judgment once; a repeated submit returns the first one."""
    study = assignment.comparison.study
    errors: dict[str, Any] = {}
    for question, answer in (("quality", quality), ("faithfulness", faithfulness)):
        try:
            check_answer(study=study, question=question, answer=answer)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        existing = Judgment.objects.filter(assignment=locked).first()
        if existing is not None:
            return existing
        if locked.status == Assignment.Status.EXPIRED:
            raise ValidationError("This task expired; please load the next one.")
        judgment = Judgment.objects.create(
            assignment=locked,
            quality=_to_ab(quality.side, locked.left_is_a),
            quality_reasons=list(quality.reasons),
            faithfulness=_to_ab(faithfulness.side, locked.left_is_a),
            faithfulness_reasons=list(faithfulness.reasons),
            time_spent_ms=max(0, int(time_spent_ms)),
        )
        locked.status = Assignment.Status.DONE
        locked.save(update_fields=["status"])
    return judgment
