"""Reads for generation."""

from django.db.models import Count, Q

from .models import GenerationBatch, GenerationJob


def batch_progress(*, batch: GenerationBatch) -> dict[str, int]:
    counts = batch.jobs.aggregate(
        total=Count("id"),
        **{s.value: Count("id", filter=Q(status=s.value)) for s in GenerationJob.Status},
    )
    return {key: int(value) for key, value in counts.items()}
