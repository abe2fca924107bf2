"""Generation through a real Celery worker process: embedded broker, and Redis + PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from generation import selectors, services
from generation.models import GenerationJob, Video
from tests.databases import database_url

pytestmark = pytest.mark.django_db(transaction=True)

TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 2}


@pytest.fixture
def worker(_media_root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process on the test database, media folder and (if embedded) broker folder."""
    from evalsite.celery import app

    app.control.purge()  # messages left by an earlier run name jobs that no longer exist
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(_media_root),
        "CELERY_BROKER_DIR": str(settings.CELERY_BROKER_DIR),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsite",
            "worker",
            "-Q",
            "gpu,default",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    yield process
    process.terminate()
    process.wait(timeout=30)


def _run_batch(worker: subprocess.Popen[bytes], prompts: int) -> tuple[int, dict[str, int]]:
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(
        name="celery test", prompts=[f"a red circle moves left {i}" for i in range(prompts)]
    )
    batch = services.create_batch(name="t", prompt_set=prompt_set, variants=[variant], seeds=1)
    deadline = time.monotonic() + 240
    while True:
        counts = selectors.batch_progress(batch=batch)
        if counts["done"] + counts["failed"] == counts["total"]:
            return batch.id, counts
        assert worker.poll() is None, "the worker process died"
        assert time.monotonic() < deadline, f"generation did not finish: {counts}"
        time.sleep(0.5)


def _assert_videos_on_disk(batch_id: int, expected: int, media_root: Path) -> None:
    videos = Video.objects.filter(job__batch_id=batch_id)
    assert videos.count() == expected
    for video in videos:
        path = media_root / video.file.name
        assert path.stat().st_size > 1000
        assert path.read_bytes()[4:8] == b"ftyp", "not an MP4 container"
        assert (media_root / video.poster.name).exists()
        assert video.seconds_spent > 0


def test_generation_runs_through_a_worker_on_the_embedded_broker(worker, settings, _media_root):
    # Given the default filesystem broker shared with a real worker process
    assert settings.CELERY_BROKER_URL.startswith("filesystem://")
    # When a batch of three prompts is launched
    batch_id, counts = _run_batch(worker, prompts=3)
    # Then the worker rendered every job into a real MP4 with a poster
    assert counts == {**counts, "done": 3, "failed": 0}
    _assert_videos_on_disk(batch_id, 3, _media_root)
    assert not GenerationJob.objects.exclude(status=GenerationJob.Status.DONE).exists()


@pytest.mark.services
def test_generation_runs_through_a_worker_on_redis_and_postgresql(worker, settings, _media_root):
    # Given Redis as the broker and PostgreSQL as the database
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert connection.vendor == "postgresql"
    # When a batch of three prompts is launched
    batch_id, counts = _run_batch(worker, prompts=3)
    # Then every job is done exactly once, each with its MP4
    assert counts["done"] == 3 and counts["failed"] == 0
    _assert_videos_on_disk(batch_id, 3, _media_root)
