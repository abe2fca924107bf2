"""Abandoned assignments go back to the pool: on a beat task, and lazily from rating requests."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import selectors
from .models import Assignment, Comparison, Study


def expire_stale_assignments(*, study: Study | None = None) -> int:
    """Abandoned assignments go back to the pool; returns how many expired."""
    now = timezone.now()
    stale = Assignment.objects.filter(status=Assignment.Status.ACTIVE, expires_at__lt=now)
    if study is not None:
        stale = stale.filter(study=study)
    expired = 0
    for assignment_id, comparison_id, kind in stale.values_list("id", "comparison_id", "kind"):
        with transaction.atomic():
            changed = Assignment.objects.filter(
                pk=assignment_id, status=Assignment.Status.ACTIVE
            ).update(status=Assignment.Status.EXPIRED)
            if changed and kind == Comparison.Kind.REAL:
                Comparison.objects.filter(pk=comparison_id, assigned_count__gt=0).update(
                    assigned_count=F("assigned_count") - 1
                )
            expired += changed
    return expired


_last_sweep: dict[str, float] = {}


def sweep_due(study: Study) -> bool:
    """Abandoned assignments go back lazily, at most every JUICE_EXPIRY_SWEEP_SECONDS per
    study and web process (the beat task `raters.expire_assignments` sweeps too)."""
    every = settings.JUICE_EXPIRY_SWEEP_SECONDS
    key = selectors.study_identity(study)
    now = time.monotonic()
    if every > 0 and now - _last_sweep.get(key, -math.inf) < every:
        return False
    _last_sweep[key] = now
    return True
