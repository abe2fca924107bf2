"""Rating tasks, thin: the work is in services and presentation (all on the `default` queue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="raters.expire_assignments")  # type: ignore[untyped-decorator]
def expire_assignments() -> int:
    """Return abandoned assignments to the pool (next_assignment also does it lazily)."""
    from . import services

    return services.expire_stale_assignments()


@shared_task(  # type: ignore[untyped-decorator]
    name="raters.prepare_clip",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=5,
    max_retries=3,
)
def prepare_clip(clip_id: int) -> bool:
    """Render one video in its comparison's shared presentation (raters.presentation)."""
    from . import presentation

    return presentation.prepare_clip(clip_id=clip_id)
