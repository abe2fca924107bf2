"""Rater profiles and who may rate now: the qualification quiz, stops by quality control and
their undoing, and the cut-off of a paused or closed study."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from . import quiz, selectors
from .models import Assignment, Comparison, Judgment, Rater, Study


class RatingRefused(PermissionDenied):
    """The rater may not rate now: `code` is 'not_qualified' or 'stopped'."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def rater_profile(*, user: Any) -> Rater:
    profile, _ = Rater.objects.get_or_create(user=user)
    return profile


def qualify_rater(*, user: Any) -> Rater:
    """Mark a rater as qualified (the quiz passed, or a trusted rater set up by staff)."""
    profile = rater_profile(user=user)
    if profile.qualified_at is None:
        profile.qualified_at = timezone.now()
        profile.save(update_fields=["qualified_at"])
    return profile


@dataclass(frozen=True)
class QuizMistake:
    """A wrong (or missing) answer, explained: what the failed-attempt page shows."""

    number: int
    question: str
    given: str
    explanation: str


@dataclass(frozen=True)
class QuizResult:
    passed: bool
    score: int
    total: int
    wrong: tuple[str, ...]
    attempts_left: int
    mistakes: tuple[QuizMistake, ...] = ()


def take_quiz(*, user: Any, answers: Mapping[str, str]) -> QuizResult:
    """Grade one attempt against the paper the rater was shown (selectors.quiz_paper); a pass
    qualifies the rater, running out of attempts screens them out."""
    with transaction.atomic():
        profile = Rater.objects.select_for_update().get(pk=rater_profile(user=user).pk)
        total = len(quiz.QUESTIONS)
        if profile.is_qualified:
            return QuizResult(True, total, total, (), 0)
        if profile.quiz_attempts >= quiz.MAX_ATTEMPTS:
            raise RatingRefused("You have used all quiz attempts.", code="not_qualified")
        paper = selectors.quiz_paper(rater=profile)
        mistakes = tuple(
            QuizMistake(
                number=number,
                question=question.text,
                given=question.label_of(str(answers.get(question.key, ""))) or "no answer",
                explanation=question.explanation,
            )
            for number, question in enumerate(paper, start=1)
            if answers.get(question.key) != question.answer
        )
        score = total - len(mistakes)
        profile.quiz_attempts += 1
        passed = score >= quiz.PASS_MARK
        if passed:
            profile.qualified_at = timezone.now()
        profile.save(update_fields=["quiz_attempts", "qualified_at"])
    wrong = tuple(paper[m.number - 1].key for m in mistakes)
    left = quiz.MAX_ATTEMPTS - profile.quiz_attempts
    return QuizResult(passed, score, total, wrong, left, mistakes)


def check_profile(*, study: Study, profile: Rater) -> None:
    if profile.is_flagged:
        raise RatingRefused(
            "Your answers did not pass our quality checks, so this study has ended for you.",
            code="stopped",
        )
    if study.require_qualification and not profile.is_qualified:
        raise RatingRefused(
            "Please pass the short qualification quiz before rating.", code="not_qualified"
        )


def check_may_rate(*, study: Study, user: Any) -> Rater:
    """What next_task checks before it claims, for pages shown on a GET: the user's profile
    (unsaved and blank when they have none yet), or RatingRefused. It writes nothing."""
    profile = selectors.rater_profile_or_blank(user=user)
    check_profile(study=study, profile=profile)
    return profile


@transaction.atomic
def stop_rater(*, rater: Rater, reason: str) -> None:
    """Stop a rater: judgments kept but flagged, their slots go back to the pool."""
    locked = Rater.objects.select_for_update().get(pk=rater.pk)
    if locked.is_flagged:
        return
    locked.is_flagged = True
    locked.flagged_reason = reason
    locked.flagged_at = timezone.now()
    locked.save(update_fields=["is_flagged", "flagged_reason", "flagged_at"])
    Judgment.objects.filter(assignment__rater_id=locked.user_id).update(is_flagged=True)
    held = Assignment.objects.filter(
        rater_id=locked.user_id,
        comparison__kind=Comparison.Kind.REAL,
        status__in=[Assignment.Status.ACTIVE, Assignment.Status.DONE],
    ).values_list("comparison_id", flat=True)
    Comparison.objects.filter(pk__in=list(held), assigned_count__gt=0).update(
        assigned_count=F("assigned_count") - 1
    )
    Assignment.objects.filter(rater_id=locked.user_id, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.EXPIRED
    )


@transaction.atomic
def reinstate_rater(*, rater: Rater) -> None:
    """Undo a stop (staff decision): judgments unflagged and slot counts recomputed."""
    Rater.objects.filter(pk=rater.pk).update(is_flagged=False, flagged_at=None)
    Judgment.objects.filter(assignment__rater_id=rater.user_id).update(is_flagged=False)
    studies = Study.objects.filter(comparisons__assignments__rater_id=rater.user_id).distinct()
    for study in studies:
        recount_assignments(study=study)


def recount_assignments(*, study: Study) -> None:
    """Recompute `assigned_count` from the assignments (after manual edits in the admin)."""
    counts = dict(
        Assignment.objects.filter(
            comparison__study=study,
            status__in=[Assignment.Status.ACTIVE, Assignment.Status.DONE],
        )
        .exclude(rater__rater__is_flagged=True)
        .values_list("comparison_id")
        .annotate(n=Count("id"))
    )
    for comparison in study.comparisons.only("id", "assigned_count"):
        wanted = counts.get(comparison.id, 0)
        if comparison.assigned_count != wanted:
            Comparison.objects.filter(pk=comparison.pk).update(assigned_count=wanted)


def check_open_for_submit(
    *, study: Study, claimed_at: datetime, now: datetime | None = None
) -> None:
    """A paused or closed study takes an answer only to a task claimed before it stopped,
    and only within JUICE_CLOSE_GRACE_MINUTES of the stop (raises RatingRefused)."""
    if study.is_active:
        return
    now = now or timezone.now()
    since = study.deactivated_at
    grace = timedelta(minutes=settings.JUICE_CLOSE_GRACE_MINUTES)
    if since is None or claimed_at >= since or now > since + grace:
        raise RatingRefused(stopped_message(study), code="closed")


def stopped_message(study: Study) -> str:
    if study.closed_at is not None:
        return "This study is closed: it takes no more answers. Thank you for your help."
    return "This study is paused: it takes no answers for now. Thank you for your help."
