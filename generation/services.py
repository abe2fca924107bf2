"""Writes for generation: variants, prompt sets, batches, and rendering chunks of jobs.

Exactly-once results rest on three rules, so that a task delivered twice (a worker killed, a
visibility timeout passed) is harmless:
1. a job is claimed under a row lock and skipped once it is done or cancelled;
2. a video is rendered to a local temporary file and moved into place only when complete, under
   a name derived from the job alone, so a second render replaces rather than adds a file;
3. the move and the `Video` row happen under the job's row lock, after checking no row exists.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import hmac
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.text import slugify

from .models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet, Video
from .prompt_files import PromptFileError, PromptRow, parse_prompt_file
from .video.config import AnyConfig, ConfigError, DiffusersConfig, ImportedConfig, parse_config

logger = logging.getLogger(__name__)

Status = GenerationJob.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING)
# Jobs per GPU task and videos per sampling call. The toy models keep getting faster per video
# up to batches of about 1,000-2,000 on an H100 (benchmarks/bench_generation.py, README).
MAX_CHUNK_SIZE = 4096


# Variants ---------------------------------------------------------------------------------


def parse_variant_config(config: Any) -> AnyConfig:
    """The config's keys, types and ranges (no disk access): what a worker re-reads per chunk."""
    try:
        return parse_config(config)
    except ConfigError as exc:
        raise ValidationError({"config": str(exc)}) from exc


def check_variant_config(config: Any) -> AnyConfig:
    """Everything a worker would otherwise find out later, short of loading weights: the keys,
    and the folder the config names (a saved pipeline's JSON files, or a trained checkpoint)."""
    return checked_variant_config(config)[0]


def checked_variant_config(config: Any) -> tuple[AnyConfig, tuple[str, ...]]:
    """`check_variant_config`, with the notes for the admin (what loads, what is not checked)."""
    parsed = parse_variant_config(config)
    try:
        return parsed, config_notes(parsed)
    except ConfigError as exc:
        raise ValidationError({"config": str(exc)}) from exc


def config_notes(config: AnyConfig) -> tuple[str, ...]:
    """Check a parsed config against the disk; returns what the admin should know."""
    from .video import checkpoints, temporal_decoding

    if isinstance(config, ImportedConfig):
        return ("Videos made elsewhere: add them with import_videos or the staff upload.",)
    if isinstance(config, DiffusersConfig):
        from .video.diffusers_pipeline import inspect_folder

        report = inspect_folder(config)
        return (f"Loads {report.class_name} from {config.path}.", *report.notes)
    root = checkpoints.checkpoint_dir(settings.JUICE_CHECKPOINT_DIR)
    folder = checkpoints.resolve_video_folder(config, root)
    notes = [f"Loads the trained checkpoint {folder.name}."]
    if config.interpolation:
        interp = checkpoints.find_interpolator(config, folder, root)
        notes.append(
            f"Interpolates with {interp.unet_folder.name}, sampled with its own "
            f"{interp.schedule} scheduler ({interp.prediction_type})."
        )
    if config.temporal_decoding:
        card = temporal_decoding.check(root)
        notes.append(
            f"Steadies the latents with {temporal_decoding.FOLDER} before decoding "
            f"(trained {card.get('recipe', {}).get('steps', '?')} steps)."
        )
    if config.temporal_filter:
        notes.append(
            f"Filters the decoded frames over time: changes under about "
            f"{config.temporal_filter:g} levels between frames are smoothed away."
        )
    return tuple(notes)


def variant_config(variant: ModelVariant) -> AnyConfig:
    return parse_variant_config(variant.config)


def _same_config(stored: Any, normalized: dict[str, Any]) -> bool:
    try:
        return parse_config(stored).to_dict() == normalized
    except ConfigError:
        return False


@dataclass(frozen=True)
class Registration:
    variant: ModelVariant
    created: bool
    notes: tuple[str, ...]


def register_variant(
    *, name: str, config: Any, slug: str = "", description: str = ""
) -> Registration:
    """Check a config fully, then store it as a variant (a new version when the slug is taken
    with another config). A refused config raises ValidationError and writes nothing."""
    parsed, notes = checked_variant_config(config)
    slug = slug or slugify(name)
    if not slug:
        raise ValidationError({"name": "The name needs at least one letter or digit."})
    normalized = parsed.to_dict()
    latest = ModelVariant.objects.filter(slug=slug).order_by("-version").first()
    if latest is not None and _same_config(latest.config, normalized):
        return Registration(variant=latest, created=False, notes=notes)
    version = latest.version + 1 if latest else 1
    variant = ModelVariant.objects.create(
        name=name, slug=slug, version=version, description=description, config=normalized
    )
    return Registration(variant=variant, created=True, notes=notes)


def get_or_create_variant(*, name: str, config: dict[str, Any], slug: str = "") -> ModelVariant:
    """Register a variant; the same slug with an identical config is reused, not duplicated."""
    return register_variant(name=name, config=config, slug=slug).variant


def check_variant_editable(*, variant: ModelVariant, config: dict[str, Any]) -> None:
    """A variant used in a batch keeps its config forever, so every result names its maker."""
    if variant.pk is None or not variant.batches.exists():
        return
    stored = ModelVariant.objects.values_list("config", flat=True).get(pk=variant.pk)
    if not _same_config(stored, parse_variant_config(config).to_dict()):
        raise ValidationError(
            {"config": "This variant was used in a batch: save the change as a new version."}
        )


@transaction.atomic
def create_variant_version(*, variant: ModelVariant) -> ModelVariant:
    """A copy of `variant` as the next version of its slug, free to edit until first used."""
    latest = (
        ModelVariant.objects.select_for_update()
        .filter(slug=variant.slug)
        .order_by("-version")
        .first()
    )
    version = (latest.version if latest else variant.version) + 1
    return ModelVariant.objects.create(
        name=variant.name,
        slug=variant.slug,
        version=version,
        description=variant.description,
        config=variant.config,
    )


# Prompt sets ------------------------------------------------------------------------------


def _unique_prompt_set_slug(name: str) -> str:
    base = (slugify(name) or "prompts")[:90]
    slug, n = base, 1
    while PromptSet.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


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
def create_prompt_set(*, name: str, rows: Sequence[PromptRow], source_file: str = "") -> PromptSet:
    if not rows:
        raise ValidationError("A prompt set needs at least one prompt.")
    prompt_set = PromptSet.objects.create(
        name=name, slug=_unique_prompt_set_slug(name), source_file=source_file[:255]
    )
    Prompt.objects.bulk_create(
        Prompt(
            prompt_set=prompt_set, external_id=row.external_id, text=row.text, category=row.category
        )
        for row in rows
    )
    return prompt_set


def create_prompt_set_from_file(*, name: str, filename: str, data: bytes) -> PromptSet:
    """Parse first, write after: a bad file raises ValidationError and creates nothing."""
    try:
        rows = parse_prompt_file(filename=filename, data=data)
    except PromptFileError as exc:
        raise ValidationError(str(exc)) from exc
    return create_prompt_set(name=name or filename, rows=rows, source_file=filename)


# Batches ----------------------------------------------------------------------------------


def _check_size(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CHUNK_SIZE:
        raise ValidationError(f"{name} must be between 1 and {MAX_CHUNK_SIZE}.")


@transaction.atomic
def create_batch(
    *,
    name: str,
    prompt_set: PromptSet,
    variants: Iterable[ModelVariant],
    seeds: int = 1,
    created_by: Any = None,
    chunk_size: int | None = None,
    sample_batch: int | None = None,
) -> GenerationBatch:
    """Create the batch and one job per (variant, prompt, seed); enqueue after commit."""
    variants = list(variants)
    if not variants:
        raise ValidationError("Choose at least one variant.")
    if seeds < 1:
        raise ValidationError("seeds must be at least 1.")
    if not prompt_set.prompts.exists():
        raise ValidationError("The prompt set has no prompts.")
    for variant in variants:
        if isinstance(check_variant_config(variant.config), ImportedConfig):
            raise ValidationError(
                f"{variant} is an imported variant: it has no model to render. "
                "Add its videos with import_videos (or the staff upload) instead."
            )
    batch = GenerationBatch(name=name, prompt_set=prompt_set, seeds=seeds, created_by=created_by)
    if chunk_size is not None:
        _check_size("chunk_size", chunk_size)
        batch.chunk_size = chunk_size
    if sample_batch is not None:
        _check_size("sample_batch", sample_batch)
        batch.sample_batch = sample_batch
    batch.save()
    batch.variants.set(variants)
    launch_batch(batch=batch)
    return batch


@transaction.atomic
def create_batch_from_upload(
    *,
    name: str,
    variants: Iterable[ModelVariant],
    filename: str,
    data: bytes,
    seeds: int = 1,
    created_by: Any = None,
    chunk_size: int | None = None,
    sample_batch: int | None = None,
) -> GenerationBatch:
    """Prompt set from a file plus its batch, in one transaction: any error leaves nothing."""
    prompt_set = create_prompt_set_from_file(name=name, filename=filename, data=data)
    return create_batch(
        name=name,
        prompt_set=prompt_set,
        variants=variants,
        seeds=seeds,
        created_by=created_by,
        chunk_size=chunk_size,
        sample_batch=sample_batch,
    )


@transaction.atomic
def launch_batch(*, batch: GenerationBatch) -> int:
    """Create the batch's missing jobs (one per variant × prompt × seed) and enqueue them.

    An import batch has one job per imported file and nothing to create.
    """
    if batch.kind == GenerationBatch.Kind.IMPORT:
        return enqueue_jobs(batch=batch)
    prompts = list(batch.prompt_set.prompts.all())
    GenerationJob.objects.bulk_create(
        (
            GenerationJob(batch=batch, variant=v, prompt=p, seed=s)
            for v in batch.variants.all()
            for p in prompts
            for s in range(batch.seeds)
        ),
        ignore_conflicts=True,
        batch_size=2000,
    )
    return enqueue_jobs(batch=batch)


def enqueue_jobs(*, batch: GenerationBatch, job_ids: Collection[int] | None = None) -> int:
    """Send the batch's queued jobs to the workers, one task per (variant, chunk of jobs): to
    the `gpu` queue to render, or to the `default` queue to transcode an import.

    Messages go out when the transaction commits, so a worker never sees a job before its row.
    """
    from .tasks import import_chunk, render_chunk

    task = import_chunk if batch.kind == GenerationBatch.Kind.IMPORT else render_chunk
    jobs = batch.jobs.filter(status=Status.QUEUED)
    if job_ids is not None:
        jobs = jobs.filter(pk__in=list(job_ids))
    rows = list(jobs.order_by("variant_id", "prompt_id", "seed").values_list("variant_id", "id"))
    for _, variant_rows in groupby(rows, key=lambda row: row[0]):
        ids = [job_id for _, job_id in variant_rows]
        for start in range(0, len(ids), batch.chunk_size):
            task.delay_on_commit(ids[start : start + batch.chunk_size])
    return len(rows)


@transaction.atomic
def cancel_batch(*, batch: GenerationBatch) -> int:
    """Stop a batch: unfinished jobs are cancelled; a render in flight is not recorded."""
    cancelled = batch.jobs.filter(status__in=UNFINISHED).update(
        status=Status.CANCELLED, worker="", finished_at=timezone.now()
    )
    GenerationBatch.objects.filter(pk=batch.pk).update(
        status=GenerationBatch.Status.CANCELLED, finished_at=timezone.now()
    )
    return cancelled


@transaction.atomic
def retry_failed(*, batch: GenerationBatch) -> int:
    """Give failed jobs a fresh set of attempts."""
    ids = list(batch.jobs.filter(status=Status.FAILED).values_list("id", flat=True))
    GenerationJob.objects.filter(pk__in=ids).update(
        status=Status.QUEUED, attempts=0, error="", worker="", finished_at=None
    )
    _reopen(batch)
    return enqueue_jobs(batch=batch, job_ids=ids)


@transaction.atomic
def resume_batch(*, batch: GenerationBatch) -> int:
    """Requeue cancelled jobs, create any missing ones and send every queued job again.

    Sending a job that already has a message in the broker costs nothing but a skipped task.
    """
    batch.jobs.filter(status=Status.CANCELLED).update(
        status=Status.QUEUED, worker="", finished_at=None
    )
    _reopen(batch)
    return launch_batch(batch=batch)


def _reopen(batch: GenerationBatch) -> None:
    GenerationBatch.objects.filter(pk=batch.pk).update(
        status=GenerationBatch.Status.RUNNING, finished_at=None
    )


def requeue_stuck(
    *,
    alive_workers: Collection[str] | None,
    stuck_after: timedelta | None = None,
    batch: GenerationBatch | None = None,
) -> int:
    """Put back running jobs whose worker is gone, or that have run too long, and resend them.

    `alive_workers` is the set of Celery nodes that answered a ping; None or empty means it is
    unknown (a broker hiccup must not requeue the whole farm), so only the age rule applies.
    """
    stuck_after = stuck_after or timedelta(seconds=settings.JUICE_JOB_STUCK_AFTER_S)
    stale = Q(started_at__lt=timezone.now() - stuck_after)
    if alive_workers:
        stale |= ~Q(worker__in=list(alive_workers))
    running = GenerationJob.objects.filter(status=Status.RUNNING)
    if batch is not None:
        running = running.filter(batch=batch)
    requeued = 0
    with transaction.atomic():
        rows = list(running.filter(stale).values_list("batch_id", "id"))
        # The status filter again: a job recorded meanwhile stays done.
        GenerationJob.objects.filter(pk__in=[i for _, i in rows], status=Status.RUNNING).update(
            status=Status.QUEUED, worker=""
        )
        for batch_id, batch_rows in groupby(sorted(rows), key=lambda row: row[0]):
            requeued += enqueue_jobs(
                batch=GenerationBatch.objects.get(pk=batch_id), job_ids=[i for _, i in batch_rows]
            )
    if requeued:
        logger.warning("Re-queued %d stuck generation jobs.", requeued)
    return requeued


def alive_workers(*, timeout_s: float = 2.0) -> set[str] | None:
    """Celery nodes answering a ping now; None when the broker cannot be asked."""
    from evalsite.celery import app

    try:
        replies = app.control.ping(timeout=timeout_s) or []
    except Exception:  # noqa: BLE001 - any broker failure means "unknown", never "all dead"
        logger.exception("Could not ping the Celery workers.")
        return None
    return {name for reply in replies for name in reply}


def delete_orphan_files(*, older_than: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete files under videos/ and posters/ that no `Video` names.

    Such a file is left when a worker dies between moving a render into place and recording it,
    and the job is then cancelled or deleted instead of rendered again. Files younger than
    `older_than` are kept: they may belong to a record about to commit.
    """
    storage = Video._meta.get_field("file").storage
    known = set(Video.objects.values_list("file", flat=True))
    known |= set(Video.objects.values_list("poster", flat=True))
    cutoff = timezone.now() - older_than
    removed = []
    for folder in ("videos", "posters"):
        try:
            _, files = storage.listdir(folder)
        except FileNotFoundError:
            continue
        for filename in files:
            name = f"{folder}/{filename}"
            if name not in known and storage.get_modified_time(name) < cutoff:
                storage.delete(name)
                removed.append(name)
    if removed:
        logger.warning("Deleted %d orphan video files.", len(removed))
    return removed


# Rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkOutcome:
    recorded: int = 0
    skipped: int = 0
    failed: int = 0
    retry_job_ids: tuple[int, ...] = ()
    retry_in_s: float = 0.0
    sample_batch: int = 0


def render_chunk(*, job_ids: Sequence[int], worker: str = "") -> ChunkOutcome:
    """Render a chunk of one variant's jobs in sampling batches; safe to run twice.

    While the model samples the next batch, a small pool encodes the last one (x264 and the
    poster), so the accelerator does not wait on the encoder. CUDA out-of-memory halves the
    sampling batch and tries the same jobs again; a config the worker cannot use fails its jobs
    at once; any other error sends the jobs back for a retry with backoff, or fails them once out
    of attempts.
    """
    from .video.pipeline import load_generator

    # 1. Claim the unfinished jobs under a row lock; finished, cancelled or deleted ones drop out.
    jobs = _claim(job_ids=job_ids, worker=worker)
    skipped = len(set(job_ids)) - len(jobs)
    failures: dict[int, str] = {}
    permanent: set[int] = set()
    size = 0
    with _encoding_pool() as recorder:
        for _, variant_jobs in groupby(jobs, key=lambda job: job.variant_id):
            pending = list(variant_jobs)
            # 2. Load (or reuse: kept per process) the variant's pipeline.
            try:
                generator = load_generator(
                    variant_config(pending[0].variant),
                    device=_device(),
                    precision=settings.JUICE_PRECISION,
                )
            except (ConfigError, ValidationError) as exc:
                # Retrying cannot mend a config: the jobs fail now, with the reason.
                message = _config_message(exc)
                logger.error("Variant %s cannot be used: %s", pending[0].variant, message)
                failures.update({job.pk: message for job in pending})
                permanent.update(job.pk for job in pending)
                continue
            except Exception as exc:  # noqa: BLE001 - recorded on the jobs, retried or failed
                logger.exception("Could not load the pipeline for %s.", pending[0].variant)
                failures.update({job.pk: _describe(exc) for job in pending})
                continue
            size = max(1, min(pending[0].batch.sample_batch, len(pending)))
            # 3. Sample in batches, halving the batch on out-of-memory.
            while pending := _still_running(pending):
                group = pending[:size]
                try:
                    videos = generator.generate(
                        [j.prompt.text for j in group], [j.seed for j in group]
                    )
                except Exception as exc:  # noqa: BLE001 - recorded on the jobs, retried or failed
                    if _is_out_of_memory(exc):
                        if size > 1:
                            size = max(1, size // 2)
                            _release_accelerator_memory()
                            logger.warning("Out of memory: sampling batch halved to %d.", size)
                            continue
                        message = _OUT_OF_MEMORY_ALONE + _describe(exc)
                    else:
                        logger.exception("Generation failed for jobs %s.", [j.pk for j in group])
                        message = _describe(exc)
                    failures.update({job.pk: message for job in group})
                else:
                    # 4. Encode in the pool; record (lock, move into place) here as each is done.
                    for job, video in zip(group, videos, strict=True):
                        recorder.submit_video(job_id=job.pk, video=video, sample_batch=len(group))
                    recorder.record_finished()
                pending = pending[len(group) :]
        recorder.record_all()
    return _conclude(
        jobs, recorder, failures, permanent=permanent, skipped=skipped, sample_batch=size
    )


def import_chunk(*, job_ids: Sequence[int], worker: str = "") -> ChunkOutcome:
    """Transcode a chunk of imported files into the delivery format and record them; safe to run
    twice, like `render_chunk`. A file that no longer probes fails its job at once, with why."""
    from .imports import import_limits, release_uploads
    from .video.probe import ProbeError, probe

    jobs = _claim(job_ids=job_ids, worker=worker)
    failures: dict[int, str] = {}
    permanent: set[int] = set()
    limits = import_limits()
    with _encoding_pool() as recorder:
        for job in _still_running(jobs):
            try:
                found = probe(job.source, limits)
            except (ProbeError, OSError) as exc:
                failures[job.pk] = f"{job.source}: {exc}"
                permanent.add(job.pk)
                continue
            fps = max(1, round(found.fps))
            # Imported videos keep their own size; a comparison's presentation evens out a pair.
            shape = _Shape(
                frames=found.frames,
                height=found.height - found.height % 2,
                width=found.width - found.width % 2,
                fps=fps,
                seconds=0.0,
            )
            encode = functools.partial(_transcode, job.source, fps)
            recorder.submit(job_id=job.pk, encode=encode, shape=shape, sample_batch=1)
            recorder.record_finished()
        recorder.record_all()
    skipped = len(set(job_ids)) - len(jobs)
    outcome = _conclude(jobs, recorder, failures, permanent=permanent, skipped=skipped)
    release_uploads(sources=[job.source for job in jobs])
    return outcome


def _conclude(
    jobs: Sequence[GenerationJob],
    recorder: _Recorder,
    failures: dict[int, str],
    *,
    permanent: Collection[int],
    skipped: int,
    sample_batch: int = 0,
) -> ChunkOutcome:
    """Settle a chunk's failures (retry or fail), close finished batches, say what happened."""
    failures = {**failures, **recorder.failures}
    retry_ids, failed = _settle_failures(failures, permanent=permanent)
    _finish_batches(batch_ids={job.batch_id for job in jobs})
    return ChunkOutcome(
        recorded=recorder.recorded,
        skipped=skipped,
        failed=failed,
        retry_job_ids=tuple(retry_ids),
        retry_in_s=_backoff_s(retry_ids),
        sample_batch=sample_batch,
    )


_OUT_OF_MEMORY_ALONE = (
    "Out of GPU memory with one video per sampling batch: the model does not fit on this GPU "
    'as configured. Set "offload" to "model", "group" or "sequential" in the variant config '
    '(or a smaller "dtype", size or frame count). '
)


def _config_message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "Config error: " + " ".join(exc.messages)
    return f"Config error: {exc}"


@dataclass(frozen=True)
class _Encoded:
    folder: str
    mp4: str
    poster: str


@dataclass(frozen=True)
class _Shape:
    """What a recorded video is: read from the frames themselves (pipelines round requests)."""

    frames: int
    height: int
    width: int
    fps: int
    seconds: float

    @classmethod
    def of(cls, video: Any) -> _Shape:
        t, h, w = video.frames.shape[:3]
        return cls(frames=t, height=h, width=w, fps=video.fps, seconds=video.seconds)


class _Recorder:
    """Encodes videos on a thread pool and records each on the calling thread once encoded.

    Only the encoding runs in the pool (ffmpeg is a subprocess; Pillow releases the GIL), so every
    database write stays on the task's own thread and connection.
    """

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.waiting: list[tuple[int, _Shape, int, Future[_Encoded]]] = []
        self.recorded = 0
        self.failures: dict[int, str] = {}

    def submit(
        self, *, job_id: int, encode: Callable[[], _Encoded], shape: _Shape, sample_batch: int
    ) -> None:
        self.waiting.append((job_id, shape, sample_batch, self.pool.submit(encode)))

    def submit_video(self, *, job_id: int, video: Any, sample_batch: int) -> None:
        encode = functools.partial(_encode, video)
        self.submit(job_id=job_id, encode=encode, shape=_Shape.of(video), sample_batch=sample_batch)

    def record_finished(self) -> None:
        """Record the videos whose encoding is done, without waiting for the others."""
        self._record(block=False)

    def record_all(self) -> None:
        self._record(block=True)

    def _record(self, *, block: bool) -> None:
        still: list[tuple[int, _Shape, int, Future[_Encoded]]] = []
        for job_id, shape, sample_batch, future in self.waiting:
            if not block and not future.done():
                still.append((job_id, shape, sample_batch, future))
                continue
            try:
                encoded = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: retried or failed
                logger.exception("Could not encode the video of job %s.", job_id)
                self.failures[job_id] = _describe(exc)
                continue
            try:
                self.recorded += _publish_video(
                    job_id=job_id, shape=shape, encoded=encoded, sample_batch=sample_batch
                )
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: retried or failed
                logger.exception("Could not store the video of job %s.", job_id)
                self.failures[job_id] = _describe(exc)
            finally:
                shutil.rmtree(encoded.folder, ignore_errors=True)
        self.waiting = still


@contextmanager
def _encoding_pool() -> Iterator[_Recorder]:
    with ThreadPoolExecutor(
        max_workers=settings.JUICE_ENCODE_WORKERS, thread_name_prefix="juice-encode"
    ) as pool:
        recorder = _Recorder(pool)
        try:
            yield recorder
        finally:
            # On any exit, wait for the encoders and leave no temporary folder behind.
            for _, _, _, future in recorder.waiting:
                try:
                    shutil.rmtree(future.result().folder, ignore_errors=True)
                except Exception:  # noqa: BLE001 - its failure was logged where it happened
                    pass


def _claim(*, job_ids: Sequence[int], worker: str) -> list[GenerationJob]:
    """Mark the chunk's unfinished jobs running on `worker`.

    A job already running was claimed by a delivery of the same message that was lost (worker
    killed) or presumed lost (visibility timeout): taking it over is safe, as recording is
    exactly-once, and it is the only way forward when that worker is gone.
    """
    with transaction.atomic():
        jobs = list(
            GenerationJob.objects.select_for_update(of=("self",))
            .select_related("variant", "prompt", "batch")
            .filter(pk__in=list(job_ids), status__in=UNFINISHED)
            .order_by("variant_id", "pk")
        )
        GenerationJob.objects.filter(pk__in=[job.pk for job in jobs]).update(
            status=Status.RUNNING,
            worker=worker[:255],
            started_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    return jobs


def _still_running(jobs: list[GenerationJob]) -> list[GenerationJob]:
    """Drop jobs cancelled, or recorded by another delivery, since the claim: no wasted sampling."""
    if not jobs:
        return jobs
    running = set(
        GenerationJob.objects.filter(
            pk__in=[job.pk for job in jobs], status=Status.RUNNING
        ).values_list("pk", flat=True)
    )
    return [job for job in jobs if job.pk in running]


def opaque_stem(job_id: int) -> str:
    """A file name that says nothing about the variant, and is the same for every render of a job.

    Keyed on SECRET_KEY so that names cannot be guessed or mapped back to jobs.
    """
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"generation-job:{job_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _encode(video: Any) -> _Encoded:
    """The MP4 and poster of one rendered video, in a temporary folder of its own (pool)."""
    from .video.export import write_mp4, write_poster

    def write(mp4: str, poster: str) -> None:
        write_mp4(video.frames, mp4, video.fps)
        write_poster(video.frames[0], poster)

    return _in_temporary_folder(write)


def _transcode(source: str, fps: int) -> _Encoded:
    """The MP4 and poster of one imported file, by ffmpeg straight from the file (pool)."""
    from .video.export import transcode

    return _in_temporary_folder(lambda mp4, poster: transcode(source, mp4, poster, fps))


def _in_temporary_folder(write: Callable[[str, str], None]) -> _Encoded:
    folder = tempfile.mkdtemp(prefix="juice-render-")
    try:
        mp4_path = os.path.join(folder, "video.mp4")
        poster_path = os.path.join(folder, "poster.png")
        write(mp4_path, poster_path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _Encoded(folder=folder, mp4=mp4_path, poster=poster_path)


def _publish_video(*, job_id: int, shape: _Shape, encoded: _Encoded, sample_batch: int) -> int:
    """Move an encoded video into place and record it; 0 when the job was already finished.

    Frames, size and fps are read from the video itself: pipelines round requests silently.
    """
    storage = Video._meta.get_field("file").storage
    stem = opaque_stem(job_id)
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (Status.DONE, Status.CANCELLED):
            return 0
        if Video.objects.filter(job_id=job_id).exists():
            return 0
        poster_name = move_into_storage(storage, encoded.poster, f"posters/{stem}.png")
        file_name = move_into_storage(storage, encoded.mp4, f"videos/{stem}.mp4")
        # A crash after the move and before the commit leaves a file under this job's name;
        # the next render of the job replaces it, so no orphan survives the batch.
        Video.objects.create(
            job=job,
            file=file_name,
            poster=poster_name,
            frames=shape.frames,
            height=shape.height,
            width=shape.width,
            fps=shape.fps,
            seconds_spent=shape.seconds,
        )
        job.status = Status.DONE
        job.error = ""
        job.finished_at = timezone.now()
        job.sample_batch = sample_batch
        job.save(update_fields=["status", "error", "finished_at", "sample_batch"])
    return 1


def move_into_storage(storage: Storage, local_path: str, name: str) -> str:
    """Publish a complete local file under `name`, replacing any earlier copy."""
    if not isinstance(storage, FileSystemStorage):
        # Remote backends (S3 and the like) make an object visible only once its upload is done.
        if storage.exists(name):
            storage.delete(name)
        with open(local_path, "rb") as handle:
            return storage.save(name, File(handle, name=os.path.basename(name)))
    target = storage.path(name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.replace(local_path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another filesystem: copy next to the target, then rename, which is atomic there.
        part = f"{target}.part-{uuid.uuid4().hex}"
        shutil.copyfile(local_path, part)
        os.replace(part, target)
    return name


def _settle_failures(
    failures: dict[int, str], *, permanent: Collection[int] = ()
) -> tuple[list[int], int]:
    """Jobs with attempts left go back to the queue; the others, and those whose failure a retry
    cannot mend (`permanent`), fail with their message."""
    retry_ids: list[int] = []
    failed = 0
    if not failures:
        return retry_ids, failed
    with transaction.atomic():
        for job in GenerationJob.objects.select_for_update().filter(
            pk__in=list(failures), status=Status.RUNNING
        ):
            message = failures[job.pk][:2000]
            if job.pk in permanent or job.attempts >= settings.JUICE_JOB_MAX_ATTEMPTS:
                job.status = Status.FAILED
                job.error = message
                job.finished_at = timezone.now()
                failed += 1
            else:
                job.status = Status.QUEUED
                job.error = f"attempt {job.attempts}: {message}"
                retry_ids.append(job.pk)
            job.worker = ""
            job.save(update_fields=["status", "error", "finished_at", "worker"])
    return retry_ids, failed


def _backoff_s(retry_ids: Sequence[int]) -> float:
    if not retry_ids:
        return 0.0
    attempts = min(
        GenerationJob.objects.filter(pk__in=list(retry_ids)).values_list("attempts", flat=True)
    )
    base = float(settings.JUICE_RETRY_BACKOFF_S)
    delay: float = base * 2 ** max(0, int(attempts) - 1)
    return min(delay, 600.0)


def _finish_batches(*, batch_ids: Collection[int]) -> None:
    unfinished = GenerationJob.objects.filter(batch=OuterRef("pk"), status__in=UNFINISHED)
    GenerationBatch.objects.filter(
        pk__in=list(batch_ids), status=GenerationBatch.Status.RUNNING
    ).exclude(Exists(unfinished)).update(
        status=GenerationBatch.Status.DONE, finished_at=timezone.now()
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _device() -> str:
    import torch

    return settings.JUICE_DEVICE or ("cuda" if torch.cuda.is_available() else "cpu")


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _release_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
