"""A worker SIGKILLed mid-batch: every job still finishes exactly once (Redis + PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import imageio
import pytest

from evalsite.celery import app
from generation import selectors, services
from generation.models import GenerationJob, Video
from tests.generation import workers as w

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
T = TypeVar("T")
Status = GenerationJob.Status
# Short enough that the killed worker's own message comes back within the test.
VISIBILITY_S = 15
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


def wait_until(check: Callable[[], T], *, timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def broker_is_idle() -> bool:
    """No message queued, and none delivered but unacknowledged (Redis keeps those apart)."""
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        return client.llen("gpu") == 0 and client.hlen("unacked") == 0


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(_media_root: Path):
    # Given two workers on Redis and PostgreSQL, and a batch of 2 variants × 16 prompts × 2 seeds
    w.reset_broker()
    env = {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "JUICE_STUB_MODEL_SECONDS": "0.15",
        "JUICE_RETRY_BACKOFF_S": "1",
    }
    with w.running_workers(
        ["w1", "w2"], media_root=_media_root, stub_model=w.STUB_MODEL, env=env
    ) as procs:
        w.wait_for_workers(["w1", "w2"])
        variants = [
            services.get_or_create_variant(name="Tiny factorized", config=TINY),
            services.get_or_create_variant(name="Tiny, 2 steps", config={**TINY, "steps": 2}),
        ]
        prompt_set = services.get_or_create_prompt_set(
            name="crash", prompts=[f"a red circle moves left, take {i}" for i in range(16)]
        )
        batch = services.create_batch(
            name="crash",
            prompt_set=prompt_set,
            variants=variants,
            seeds=2,
            chunk_size=8,
            sample_batch=2,
        )
        assert batch.jobs.count() == 64

        # When w1 is killed with SIGKILL in the middle of a chunk (3+ jobs left: the kill cannot
        # arrive after the chunk's last record, even if this process stalls for a moment)
        victim = w.node_name("w1")
        wait_until(
            lambda: (
                batch.jobs.filter(status=Status.DONE).count() >= 4
                and batch.jobs.filter(status=Status.RUNNING, worker=victim).count() >= 3
            ),
            timeout_s=120,
            what="w1 to be mid-chunk",
        )
        w.kill(procs["w1"])
        held = set(
            batch.jobs.filter(status=Status.RUNNING, worker=victim).values_list("pk", flat=True)
        )
        assert held, "w1 died holding no job: the kill missed the middle of a chunk"
        # and the admin presses "Re-queue stuck jobs" (the beat task does the same)
        alive = services.alive_workers(timeout_s=5.0)  # generous: two busy cores
        assert w.node_name("w2") in alive and victim not in alive
        assert services.requeue_stuck(alive_workers=alive, batch=batch) >= 1

        # Then the batch completes, and the dead worker's own message, back after the
        # visibility timeout, is delivered to w2 and does nothing
        counts = selectors.follow_batch(
            batch=batch, on_progress=lambda c: None, poll_s=0.2, timeout_s=150
        )
        wait_until(broker_is_idle, timeout_s=VISIBILITY_S + 40, what="the redelivery")
        time.sleep(1.0)  # let a task that just took the redelivered message finish

    assert counts["done"] == 64 and counts["failed"] == 0 and counts["total"] == 64
    jobs = GenerationJob.objects.filter(batch=batch)
    assert set(jobs.values_list("status", flat=True)) == {Status.DONE}
    assert set(jobs.filter(pk__in=held).values_list("worker", flat=True)) == {w.node_name("w2")}
    assert all(a >= 2 for a in jobs.filter(pk__in=held).values_list("attempts", flat=True))

    # Exactly one record per job, and exactly the recorded files on disk: no duplicates,
    # no orphans, no partial or temporary files
    videos = list(Video.objects.filter(job__batch=batch))
    assert len(videos) == 64 and len({v.job_id for v in videos}) == 64
    recorded = {v.file.name for v in videos} | {v.poster.name for v in videos}
    on_disk = {str(p.relative_to(_media_root)) for p in _media_root.rglob("*") if p.is_file()}
    assert on_disk == recorded
    for video in videos:
        path = _media_root / video.file.name
        reader = imageio.get_reader(str(path), format="FFMPEG")  # type: ignore[arg-type]
        try:
            assert reader.count_frames() == video.frames, f"{path} is incomplete"
        finally:
            reader.close()
