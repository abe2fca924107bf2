"""Rendering a chunk of jobs: exactly-once records, redelivery, OOM, retries, stuck jobs."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from django.core.exceptions import ValidationError
from django.utils import timezone

from generation import services, tasks
from generation.models import GenerationBatch, GenerationJob, Video
from tests.generation.fakes import FakeGenerator, install

pytestmark = pytest.mark.django_db
Status = GenerationJob.Status
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


def make_batch(*, prompts: int = 3, seeds: int = 1, sample_batch: int = 4) -> GenerationBatch:
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(
        name=f"render {prompts}x{seeds}",
        prompts=[f"a red circle moves {i}" for i in range(prompts)],
    )
    return services.create_batch(
        name="b", prompt_set=prompt_set, variants=[variant], seeds=seeds, sample_batch=sample_batch
    )


def job_ids(batch: GenerationBatch) -> list[int]:
    return list(batch.jobs.order_by("pk").values_list("pk", flat=True))


def media_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_chunk_is_sampled_in_batches_and_recorded_once_under_opaque_names(
    monkeypatch, _media_root
):
    fake = FakeGenerator()
    install(monkeypatch, fake)
    batch = make_batch(prompts=3, seeds=2, sample_batch=4)

    outcome = services.render_chunk(job_ids=job_ids(batch), worker="w1@host")

    assert (outcome.recorded, outcome.skipped, outcome.failed) == (6, 0, 0)
    assert fake.calls == [4, 2]
    videos = list(Video.objects.filter(job__batch=batch).select_related("job"))
    assert len(videos) == 6
    expected = sorted(
        [f"videos/{services.opaque_stem(v.job_id)}.mp4" for v in videos]
        + [f"posters/{services.opaque_stem(v.job_id)}.png" for v in videos]
    )
    assert media_files(_media_root) == expected
    for video in videos:
        assert (_media_root / video.file.name).read_bytes()[4:8] == b"ftyp"
        assert re.fullmatch(r"videos/[0-9a-f]{32}\.mp4", video.file.name)
        assert (video.frames, video.height, video.width, video.fps) == (4, 16, 16, 4)
        assert video.job.status == Status.DONE and video.job.worker == "w1@host"
    batch.refresh_from_db()
    assert batch.status == GenerationBatch.Status.DONE and batch.finished_at is not None


def test_the_worker_loads_the_variant_on_the_configured_device_and_precision(
    monkeypatch, settings, _media_root
):
    settings.JUICE_DEVICE, settings.JUICE_PRECISION = "cpu", "bfloat16"
    loads = install(monkeypatch, FakeGenerator())
    batch = make_batch(prompts=2)

    services.render_chunk(job_ids=job_ids(batch), worker="w1@host")

    assert [(device, precision) for _config, device, precision in loads] == [("cpu", "bfloat16")]


def test_batch_sizes_up_to_the_cap_are_taken_and_larger_ones_refused_by_name(_media_root):
    batch = make_batch(prompts=1, sample_batch=services.MAX_CHUNK_SIZE)
    assert batch.sample_batch == 4096
    with pytest.raises(ValidationError, match="sample_batch must be between 1 and 4096"):
        make_batch(prompts=1, sample_batch=4097)


def test_a_redelivered_chunk_does_nothing_for_finished_jobs(monkeypatch, _media_root):
    fake = FakeGenerator()
    install(monkeypatch, fake)
    batch = make_batch(prompts=3)
    ids = job_ids(batch)
    services.render_chunk(job_ids=ids, worker="w1@host")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in _media_root.rglob("*.*")}

    again = services.render_chunk(job_ids=ids, worker="w2@host")

    assert (again.recorded, again.skipped) == (0, 3)
    assert fake.calls == [3], "the redelivered task must not sample again"
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in _media_root.rglob("*.*")} == before
    assert Video.objects.count() == 3
    assert set(GenerationJob.objects.values_list("attempts", "worker")) == {(1, "w1@host")}


def test_a_second_delivery_racing_the_first_records_nothing_twice(monkeypatch, _media_root):
    # Given a delivery that is overtaken while it samples: the same message, redelivered after
    # a visibility timeout, renders and records the jobs first.
    class Overtaken(FakeGenerator):
        def generate(self, prompts, seeds):  # type: ignore[no-untyped-def]
            if not self.calls:
                self.calls.append(0)
                services.render_chunk(job_ids=ids, worker="w2@host")
            return super().generate(prompts, seeds)

    install(monkeypatch, Overtaken())
    batch = make_batch(prompts=2)
    ids = job_ids(batch)

    # When the first delivery finishes its own sampling
    outcome = services.render_chunk(job_ids=ids, worker="w1@host")

    # Then it records nothing, and there is one video and one file pair per job
    assert outcome.recorded == 0
    assert Video.objects.count() == 2
    assert len(media_files(_media_root)) == 4
    assert set(GenerationJob.objects.values_list("worker", flat=True)) == {"w2@host"}


def test_a_file_left_by_a_worker_killed_before_recording_is_replaced_not_duplicated(
    monkeypatch, _media_root
):
    install(monkeypatch, FakeGenerator())
    batch = make_batch(prompts=1)
    (job_id,) = job_ids(batch)
    # A worker moved its MP4 into place, then died before the commit: a file without a row.
    stale = _media_root / "videos" / f"{services.opaque_stem(job_id)}.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a dead worker")
    GenerationJob.objects.filter(pk=job_id).update(status=Status.RUNNING, worker="dead@host")

    outcome = services.render_chunk(job_ids=[job_id], worker="w1@host")

    assert outcome.recorded == 1
    assert media_files(_media_root) == sorted(
        [f"videos/{stale.stem}.mp4", f"posters/{stale.stem}.png"]
    )
    assert stale.read_bytes()[4:8] == b"ftyp"
    assert Video.objects.get().file.name == f"videos/{stale.stem}.mp4"


def test_cancelled_jobs_are_not_rendered(monkeypatch, _media_root):
    fake = FakeGenerator()
    install(monkeypatch, fake)
    batch = make_batch(prompts=2)
    assert services.cancel_batch(batch=batch) == 2

    outcome = services.render_chunk(job_ids=job_ids(batch), worker="w1@host")

    assert (outcome.recorded, outcome.skipped) == (0, 2)
    assert fake.calls == [] and media_files(_media_root) == []


def test_out_of_memory_halves_the_sampling_batch_and_the_jobs_succeed(monkeypatch):
    # Given a GPU that runs out of memory on the first batch of four
    fake = FakeGenerator(fail_first=torch.cuda.OutOfMemoryError("CUDA out of memory."))
    install(monkeypatch, fake)
    batch = make_batch(prompts=4, sample_batch=4)

    # When the chunk is rendered
    outcome = services.render_chunk(job_ids=job_ids(batch), worker="gpu0@host")

    # Then the same jobs are sampled again two at a time, and all succeed on their first attempt
    assert fake.calls == [4, 2, 2]
    assert (outcome.recorded, outcome.failed, outcome.retry_job_ids) == (4, 0, ())
    assert outcome.sample_batch == 2
    assert set(batch.jobs.values_list("status", "sample_batch", "attempts", "error")) == {
        (Status.DONE, 2, 1, "")
    }


def test_other_errors_retry_with_backoff_then_fail_with_the_message(monkeypatch, settings):
    settings.JUICE_JOB_MAX_ATTEMPTS = 2
    settings.JUICE_RETRY_BACKOFF_S = 5
    install(monkeypatch, FakeGenerator(fail_always=RuntimeError("NaN in latents")))
    batch = make_batch(prompts=2)
    ids = job_ids(batch)

    first = services.render_chunk(job_ids=ids, worker="w1@host")
    assert first.retry_job_ids == tuple(ids) and first.retry_in_s == 5
    assert set(batch.jobs.values_list("status", "error")) == {
        (Status.QUEUED, "attempt 1: RuntimeError: NaN in latents")
    }

    second = services.render_chunk(job_ids=ids, worker="w1@host")
    assert second.failed == 2 and second.retry_job_ids == ()
    assert set(batch.jobs.values_list("status", "error", "attempts")) == {
        (Status.FAILED, "RuntimeError: NaN in latents", 2)
    }
    batch.refresh_from_db()
    assert batch.status == GenerationBatch.Status.DONE


def test_the_task_retries_through_celery_until_the_attempts_run_out(monkeypatch, settings):
    settings.JUICE_JOB_MAX_ATTEMPTS = 3
    fake = FakeGenerator(fail_always=ValueError("bad prompt"))
    install(monkeypatch, fake)
    batch = make_batch(prompts=1)

    tasks.render_chunk.apply(args=[job_ids(batch)])  # eager: retries run at once

    assert fake.calls == [1, 1, 1]
    job = batch.jobs.get()
    assert (job.status, job.attempts, job.error) == (Status.FAILED, 3, "ValueError: bad prompt")


def test_retry_failed_gives_fresh_attempts(monkeypatch, django_capture_on_commit_callbacks):
    install(monkeypatch, FakeGenerator(fail_always=ValueError("x")))
    batch = make_batch(prompts=1)
    GenerationJob.objects.update(status=Status.FAILED, attempts=3, error="ValueError: x")

    with django_capture_on_commit_callbacks() as sent:
        assert services.retry_failed(batch=batch) == 1

    assert len(sent) == 1
    assert set(batch.jobs.values_list("status", "attempts", "error")) == {(Status.QUEUED, 0, "")}


def test_requeue_stuck_puts_back_jobs_of_gone_workers_and_jobs_running_too_long(
    django_capture_on_commit_callbacks,
):
    batch = make_batch(prompts=4)
    a, b, c, d = job_ids(batch)
    now = timezone.now()
    GenerationJob.objects.filter(pk=a).update(
        status=Status.RUNNING, worker="gone@x", started_at=now
    )
    GenerationJob.objects.filter(pk=b).update(
        status=Status.RUNNING, worker="alive@x", started_at=now
    )
    GenerationJob.objects.filter(pk=c).update(
        status=Status.RUNNING, worker="alive@x", started_at=now - timedelta(hours=2)
    )
    GenerationJob.objects.filter(pk=d).update(status=Status.DONE, worker="gone@x", started_at=now)

    with django_capture_on_commit_callbacks() as sent:
        n = services.requeue_stuck(alive_workers={"alive@x"}, stuck_after=timedelta(hours=1))

    assert n == 2 and len(sent) == 1
    statuses = dict(GenerationJob.objects.values_list("pk", "status"))
    assert statuses == {a: Status.QUEUED, b: Status.RUNNING, c: Status.QUEUED, d: Status.DONE}


def test_requeue_stuck_without_an_answer_from_the_broker_uses_only_the_age_rule():
    batch = make_batch(prompts=1)
    batch.jobs.update(status=Status.RUNNING, worker="busy@x", started_at=timezone.now())

    assert services.requeue_stuck(alive_workers=None, stuck_after=timedelta(hours=1)) == 0
    assert services.requeue_stuck(alive_workers=set(), stuck_after=timedelta(hours=1)) == 0
    assert batch.jobs.get().status == Status.RUNNING


def test_jobs_are_sent_in_chunks_of_one_variant(django_capture_on_commit_callbacks, monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.render_chunk, "delay_on_commit", lambda ids: sent.append(ids))
    one = services.get_or_create_variant(name="One", config=TINY)
    two = services.get_or_create_variant(name="Two", config={**TINY, "mode": "direct"})
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a", "b", "c"])

    batch = services.create_batch(
        name="b", prompt_set=prompt_set, variants=[one, two], seeds=2, chunk_size=4
    )

    assert sorted(len(ids) for ids in sent) == [2, 2, 4, 4]
    variant_of = dict(batch.jobs.values_list("pk", "variant_id"))
    assert all(len({variant_of[i] for i in ids}) == 1 for ids in sent)
    assert sorted(i for ids in sent for i in ids) == sorted(variant_of)


def test_any_storages_backend_works_by_setting_only(monkeypatch, settings):
    # Given a default storage without local paths (as S3 through django-storages)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    install(monkeypatch, FakeGenerator())
    batch = make_batch(prompts=2)
    ids = job_ids(batch)
    storage = Video._meta.get_field("file").storage
    stale = f"videos/{services.opaque_stem(ids[0])}.mp4"
    from django.core.files.base import ContentFile

    storage.save(stale, ContentFile(b"left by a dead worker"))

    # When the chunk is rendered, and delivered again
    assert services.render_chunk(job_ids=ids, worker="w1@host").recorded == 2
    assert services.render_chunk(job_ids=ids, worker="w2@host").recorded == 0

    # Then the files are in that storage under the recorded names, the stale one replaced
    for video in Video.objects.filter(job__batch=batch):
        assert storage.exists(video.file.name) and storage.exists(video.poster.name)
        with storage.open(video.file.name) as handle:
            assert handle.read()[4:8] == b"ftyp"
    assert sorted(storage.listdir("videos")[1]) == sorted(
        f"{services.opaque_stem(i)}.mp4" for i in ids
    )


def test_orphan_files_older_than_an_hour_are_deleted_and_recorded_ones_kept(
    monkeypatch, _media_root
):
    install(monkeypatch, FakeGenerator())
    batch = make_batch(prompts=1)
    services.render_chunk(job_ids=job_ids(batch), worker="w1@host")
    old_orphan = _media_root / "videos" / "0123456789abcdef0123456789abcdef.mp4"
    fresh_orphan = _media_root / "posters" / "fedcba9876543210fedcba9876543210.png"
    old_orphan.write_bytes(b"render of a job cancelled after its worker died")
    fresh_orphan.write_bytes(b"a record may be about to commit")
    two_hours_ago = time.time() - 7200
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    for recorded in (_media_root / "videos").glob("*.mp4"):
        os.utime(recorded, (two_hours_ago, two_hours_ago))

    removed = services.delete_orphan_files()

    assert removed == [f"videos/{old_orphan.name}"]
    assert not old_orphan.exists() and fresh_orphan.exists()
    video = Video.objects.get()
    assert (_media_root / video.file.name).exists() and (_media_root / video.poster.name).exists()


def test_cancelling_mid_chunk_stops_sampling_the_rest(monkeypatch, _media_root):
    class CancelledMeanwhile(FakeGenerator):
        def generate(self, prompts, seeds):  # type: ignore[no-untyped-def]
            services.cancel_batch(batch=batch)  # the admin presses Cancel during sampling
            return super().generate(prompts, seeds)

    fake = CancelledMeanwhile()
    install(monkeypatch, fake)
    batch = make_batch(prompts=3, sample_batch=1)

    outcome = services.render_chunk(job_ids=job_ids(batch), worker="w1@host")

    assert fake.calls == [1] and outcome.recorded == 0
    assert media_files(_media_root) == [] and not Video.objects.exists()


def test_a_storage_failure_sends_the_jobs_back_for_a_retry(monkeypatch, _media_root):
    install(monkeypatch, FakeGenerator())

    def full_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "move_into_storage", full_disk)
    batch = make_batch(prompts=2)
    ids = job_ids(batch)

    outcome = services.render_chunk(job_ids=ids, worker="w1@host")

    assert outcome.retry_job_ids == tuple(ids) and outcome.recorded == 0
    assert set(batch.jobs.values_list("status", "error")) == {
        (Status.QUEUED, "attempt 1: OSError: [Errno 28] No space left on device")
    }
    assert not Video.objects.exists() and media_files(_media_root) == []
