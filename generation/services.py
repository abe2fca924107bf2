"""Writes for generation: variants, prompt sets, batches, and recording rendered videos."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from .models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet, Video
from .video.config import ConfigError, VariantConfig


def check_variant_config(config: dict[str, Any]) -> VariantConfig:
    try:
        return VariantConfig.from_dict(config)
    except ConfigError as exc:
        raise ValidationError({"config": str(exc)}) from exc


def variant_config(variant: ModelVariant) -> VariantConfig:
    return check_variant_config(variant.config)


def get_or_create_variant(*, name: str, config: dict[str, Any], slug: str = "") -> ModelVariant:
    """Register a variant; the same slug with an identical config is reused, not duplicated."""
    normalized = check_variant_config(config).to_dict()
    slug = slug or slugify(name)
    latest = ModelVariant.objects.filter(slug=slug).order_by("-version").first()
    if latest is not None and latest.config == normalized:
        return latest
    version = latest.version + 1 if latest else 1
    return ModelVariant.objects.create(name=name, slug=slug, version=version, config=normalized)


def get_or_create_prompt_set(*, name: str, prompts: Sequence[str]) -> PromptSet:
    prompt_set, created = PromptSet.objects.get_or_create(
        slug=slugify(name), defaults={"name": name}
    )
    if created:
        Prompt.objects.bulk_create(
            Prompt(prompt_set=prompt_set, external_id=str(i + 1), text=text)
            for i, text in enumerate(prompts)
        )
    return prompt_set


@transaction.atomic
def create_batch(
    *,
    name: str,
    prompt_set: PromptSet,
    variants: Iterable[ModelVariant],
    seeds: int = 1,
    created_by: Any = None,
) -> GenerationBatch:
    """Create the batch and one job per (variant, prompt, seed); enqueue after commit."""
    variants = list(variants)
    if not variants:
        raise ValidationError("Choose at least one variant.")
    if seeds < 1:
        raise ValidationError("seeds must be at least 1.")
    for variant in variants:
        check_variant_config(variant.config)
    batch = GenerationBatch.objects.create(
        name=name, prompt_set=prompt_set, seeds=seeds, created_by=created_by
    )
    batch.variants.set(variants)
    launch_batch(batch=batch)
    return batch


@transaction.atomic
def launch_batch(*, batch: GenerationBatch) -> int:
    """Create the batch's missing jobs (one per variant × prompt × seed) and enqueue them."""
    prompts = list(batch.prompt_set.prompts.all())
    GenerationJob.objects.bulk_create(
        (
            GenerationJob(batch=batch, variant=v, prompt=p, seed=s)
            for v in batch.variants.all()
            for p in prompts
            for s in range(batch.seeds)
        ),
        ignore_conflicts=True,
    )
    return enqueue_jobs(batch=batch)


def enqueue_jobs(*, batch: GenerationBatch) -> int:
    """Send every queued job of the batch to the `gpu` queue once the transaction commits."""
    from .tasks import render_job

    job_ids = list(
        batch.jobs.filter(status=GenerationJob.Status.QUEUED).values_list("id", flat=True)
    )
    for job_id in job_ids:
        render_job.delay_on_commit(job_id)
    return len(job_ids)


@dataclass(frozen=True)
class RenderOutcome:
    job_id: int
    created: bool


def render_job(*, job_id: int) -> RenderOutcome:
    """Render one job; idempotent: a job that already has its video is left as it is."""
    from .video.export import write_mp4, write_poster
    from .video.pipeline import load_generator

    with transaction.atomic():
        job = (
            GenerationJob.objects.select_for_update()
            .select_related("variant", "prompt")
            .get(pk=job_id)
        )
        if job.status in (GenerationJob.Status.DONE, GenerationJob.Status.CANCELLED):
            return RenderOutcome(job_id=job_id, created=False)
        job.status = GenerationJob.Status.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.save(update_fields=["status", "attempts", "started_at"])

    config = variant_config(job.variant)
    try:
        generator = load_generator(config)
        (video,) = generator.generate([job.prompt.text], [job.seed])
    except Exception as exc:
        GenerationJob.objects.filter(pk=job_id).update(
            status=GenerationJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise

    with tempfile.TemporaryDirectory() as tmp:
        mp4_path = os.path.join(tmp, "video.mp4")
        poster_path = os.path.join(tmp, "poster.png")
        write_mp4(video.frames, mp4_path, video.fps)
        write_poster(video.frames[0], poster_path)
        with transaction.atomic():
            job = GenerationJob.objects.select_for_update().get(pk=job_id)
            if Video.objects.filter(job=job).exists():
                return RenderOutcome(job_id=job_id, created=False)
            record = Video(
                job=job,
                frames=video.frames.shape[0],
                fps=video.fps,
                height=video.frames.shape[1],
                width=video.frames.shape[2],
                seconds_spent=video.seconds,
            )
            with open(mp4_path, "rb") as mp4, open(poster_path, "rb") as png:
                record.file.save("video.mp4", File(mp4), save=False)
                record.poster.save("poster.png", File(png), save=False)
            record.save()
            job.status = GenerationJob.Status.DONE
            job.error = ""
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
    return RenderOutcome(job_id=job_id, created=True)
