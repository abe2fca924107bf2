"""Periodic upkeep for rating (thin: the work is in services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="raters.expire_assignments")  # type: ignore[untyped-decorator]
def expire_assignments() -> int:
    """Return abandoned assignments to the pool (next_assignment also does it lazily)."""
    from . import services

    return services.expire_stale_assignments()
