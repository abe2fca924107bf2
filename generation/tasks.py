"""Celery tasks: ids in, hand off to services; the work and its rules live there.

Queues come from CELERY_TASK_ROUTES: render_chunk → `gpu`; import_chunk and the sweeps →
`default`.
"""

from celery import shared_task

from . import services


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="generation.render_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # attempts are counted per job, in the database
)
def render_chunk(self, job_ids: list[int]) -> int:  # type: ignore[no-untyped-def]
    outcome = services.render_chunk(job_ids=job_ids, worker=self.request.hostname or "")
    if outcome.retry_job_ids:
        raise self.retry(args=(list(outcome.retry_job_ids),), countdown=outcome.retry_in_s)
    return outcome.recorded


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="generation.import_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def import_chunk(self, job_ids: list[int]) -> int:  # type: ignore[no-untyped-def]
    outcome = services.import_chunk(job_ids=job_ids, worker=self.request.hostname or "")
    if outcome.retry_job_ids:
        raise self.retry(args=(list(outcome.retry_job_ids),), countdown=outcome.retry_in_s)
    return outcome.recorded


@shared_task(name="generation.requeue_stuck", acks_late=True)  # type: ignore[untyped-decorator]
def requeue_stuck() -> int:
    return services.requeue_stuck(alive_workers=services.alive_workers())


@shared_task(name="generation.delete_orphan_files", acks_late=True)  # type: ignore[untyped-decorator]
def delete_orphan_files() -> int:
    return len(services.delete_orphan_files())
