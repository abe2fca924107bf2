"""Reads for rating."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .models import Assignment, Study


def active_studies() -> QuerySet[Study]:
    return Study.objects.filter(is_active=True).order_by("created_at")


def rater_progress(*, study: Study, rater: Any) -> dict[str, int]:
    done = Assignment.objects.filter(
        rater=rater, comparison__study=study, status=Assignment.Status.DONE
    ).count()
    return {"done": done, "total": study.comparisons.count()}


def assignment_for_rater(*, token: str, rater: Any) -> Assignment | None:
    """The rater's own assignment by its opaque token; another rater's token finds nothing."""
    try:
        return Assignment.objects.select_related("comparison__study", "comparison__prompt").get(
            token=token, rater=rater
        )
    except (Assignment.DoesNotExist, ValidationError, ValueError):
        return None
