from celery import shared_task

from . import services


@shared_task(name="generation.render_job", queue="gpu", acks_late=True, reject_on_worker_lost=True)
def render_job(job_id: int) -> bool:
    return services.render_job(job_id=job_id).created
