"""Reads for generation: progress of batches, per variant, with throughput and time left."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from .models import GenerationBatch, GenerationJob, ModelVariant, PromptSet

Status = GenerationJob.Status
# Throughput is measured over this recent window, so a stalled farm shows as stalled.
THROUGHPUT_WINDOW = timedelta(minutes=5)
# The batch page lists every failed job with its reason, up to this many (then a count).
FAILURES_SHOWN = 500
RUNNING_SHOWN = 50


def _status_counts(jobs: QuerySet[GenerationJob]) -> dict[str, int]:
    counts = jobs.aggregate(
        total=Count("id"),
        **{s.value: Count("id", filter=Q(status=s.value)) for s in Status},
    )
    return {key: int(value) for key, value in counts.items()}


def batch_progress(*, batch: GenerationBatch) -> dict[str, int]:
    return _status_counts(batch.jobs.all())


def variant_is_used(*, variant: ModelVariant) -> bool:
    return variant.batches.exists()


def launchable_variants() -> QuerySet[ModelVariant]:
    return ModelVariant.objects.order_by("slug", "-version")


def variant_rows(*, limit: int = 200) -> list[dict[str, Any]]:
    """Variants for the staff page: what each loads, in a line, and whether a batch used it."""
    rows = []
    used = set(
        ModelVariant.objects.filter(batches__isnull=False).values_list("pk", flat=True).distinct()
    )
    for variant in ModelVariant.objects.order_by("slug", "-version")[:limit]:
        config = variant.config if isinstance(variant.config, dict) else {}
        kind = str(config.get("kind", "emu"))
        if kind == "diffusers":
            summary = (
                f"{config.get('path', '')} · {config.get('num_frames')} frames "
                f"{config.get('width')}×{config.get('height')} · {config.get('dtype')}"
            )
        else:
            summary = " · ".join(
                str(config.get(key, "")) for key in ("mode", "schedule", "spatial")
            )
        rows.append(
            {"variant": variant, "kind": kind, "summary": summary, "used": variant.pk in used}
        )
    return rows


def imported_variants() -> QuerySet[ModelVariant]:
    return ModelVariant.objects.filter(config__kind="imported").order_by("slug", "-version")


def prompt_set_by_slug(*, slug: str) -> PromptSet:
    """The prompt set with this slug; LookupError names the known ones."""
    found = PromptSet.objects.filter(slug=slug).first()
    if found is None:
        known = ", ".join(PromptSet.objects.values_list("slug", flat=True)[:50])
        raise LookupError(f"No prompt set with slug {slug!r}. Known: {known or 'none'}.")
    return found


def latest_variants(*, slugs: list[str]) -> list[ModelVariant]:
    """The newest version of each slug, in the order given; unknown slugs raise LookupError."""
    found = []
    for slug in slugs:
        variant = ModelVariant.objects.filter(slug=slug).order_by("-version").first()
        if variant is None:
            known = ", ".join(ModelVariant.objects.values_list("slug", flat=True).distinct())
            raise LookupError(f"No variant with slug {slug!r}. Known: {known or 'none'}.")
        found.append(variant)
    return found


def recent_batches(*, limit: int = 20) -> list[dict[str, Any]]:
    return [
        {"batch": batch, "progress": batch_progress(batch=batch)}
        for batch in GenerationBatch.objects.select_related("prompt_set")[:limit]
    ]


def _throughput_per_min(done_jobs: QuerySet[GenerationJob], now: datetime) -> float:
    window_start = now - THROUGHPUT_WINDOW
    recent = done_jobs.filter(finished_at__gte=window_start)
    stats = recent.aggregate(n=Count("id"), first=Min("finished_at"), started=Min("started_at"))
    if not stats["n"]:
        return 0.0
    # Measure from when work in the window began, not from the window edge, for young batches.
    since = max(window_start, min(stats["first"], stats["started"] or stats["first"]))
    minutes: float = max((now - since).total_seconds(), 1.0) / 60
    return float(stats["n"]) / minutes


def batch_report(*, batch: GenerationBatch, now: datetime | None = None) -> dict[str, Any]:
    """Everything the live progress view shows, as plain JSON-ready values."""
    now = now or timezone.now()
    jobs = batch.jobs.all()
    totals = _status_counts(jobs)
    finished = totals["done"] + totals["failed"] + totals["cancelled"]
    throughput = _throughput_per_min(jobs.filter(status=Status.DONE), now)
    remaining = totals["queued"] + totals["running"]
    eta_s = math.ceil(remaining / throughput * 60) if throughput and remaining else None
    per_variant = []
    for variant in batch.variants.order_by("slug", "version"):
        counts = _status_counts(jobs.filter(variant=variant))
        per_variant.append(
            {
                "id": variant.pk,
                "name": str(variant),
                **counts,
                "throughput_per_min": round(
                    _throughput_per_min(jobs.filter(variant=variant, status=Status.DONE), now), 2
                ),
            }
        )
    failures = job_failures(batch=batch, limit=FAILURES_SHOWN)
    last = jobs.aggregate(last=Max("finished_at"))["last"]
    return {
        "batch": batch.pk,
        "name": batch.name,
        "status": batch.status,
        **totals,
        "finished": finished,
        "percent": round(100 * finished / totals["total"], 1) if totals["total"] else 0.0,
        "throughput_per_min": round(throughput, 2),
        "eta_seconds": eta_s,
        "last_finished_at": last.isoformat() if last else None,
        "variants": per_variant,
        "running_jobs": [
            {
                "job": job.pk,
                "variant": str(job.variant),
                "prompt": job.prompt.text[:120],
                "seed": job.seed,
                "worker": job.worker,
                "seconds": round((now - job.started_at).total_seconds()) if job.started_at else 0,
            }
            for job in jobs.filter(status=Status.RUNNING)
            .select_related("variant", "prompt")
            .order_by("started_at", "pk")[:RUNNING_SHOWN]
        ],
        "failures": failures,
        "failures_left_out": max(0, totals["failed"] + _retrying(jobs) - len(failures)),
    }


def _retrying(jobs: QuerySet[GenerationJob]) -> int:
    return jobs.filter(status=Status.QUEUED).exclude(error="").count()


def job_failures(*, batch: GenerationBatch, limit: int | None = None) -> list[dict[str, Any]]:
    """Each failed job with its reason (failed for good first, then those waiting for a retry),
    as the batch page and `launch_batch --wait` show them."""
    rows = (
        batch.jobs.filter(Q(status=Status.FAILED) | (Q(status=Status.QUEUED) & ~Q(error="")))
        .select_related("variant", "prompt")
        .order_by("status", "pk")  # "failed" sorts before "queued"
    )
    return [
        {
            "job": job.pk,
            "variant": str(job.variant),
            "prompt": job.prompt.text[:120],
            "seed": job.seed,
            "attempts": job.attempts,
            "status": job.status,
            "error": job.error[:500] or "(no reason recorded)",
        }
        for job in (rows[:limit] if limit is not None else rows)
    ]


def follow_batch(
    *,
    batch: GenerationBatch,
    on_progress: Callable[[dict[str, int]], None],
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> dict[str, int]:
    """Poll until no job is queued or running; returns the final counts."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        counts = batch_progress(batch=batch)
        on_progress(counts)
        if counts["queued"] + counts["running"] == 0:
            return counts
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Batch {batch.pk} did not finish in {timeout_s:.0f} s: {counts}")
        time.sleep(poll_s)
