"""Faults on the real servers: PostgreSQL restarted and gunicorn SIGKILLed mid rating run, Redis
killed mid generation batch.

The PostgreSQL restart is the only one that touches a shared server (about 2 s of downtime for
everything on it), so it happens once, in one test. Redis faults use a private redis-server
with an append-only file, the durable broker setup docs/production.md asks for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connections
from rest_framework.authtoken.models import Token

from generation import services as generation_services
from generation.models import GenerationJob, Video
from raters import simulation
from raters.models import Judgment
from tests.databases import database_url
from tests.factories import UserFactory
from tests.system.servers import (
    assert_judgments_consistent,
    build_bulk_study,
    free_port,
    gunicorn,
    start_gunicorn,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Slow enough that the fault lands mid-run, fast enough for CI: ~0.2 s per task per rater.
PACED = simulation.Behaviour(wait_scale=0.02, retry_for_s=90)


def _study(media_root: Path, slug: str):  # type: ignore[no-untyped-def]
    return build_bulk_study(
        comparisons=30,
        pairs=2,
        raters_per_pair=3,
        slug=slug,
        media_root=media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )


class Run(threading.Thread):
    """A simulation in the background, so the test can break things while it runs."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.kwargs = kwargs
        self.report: simulation.SimulationReport | None = None

    def run(self) -> None:
        self.report = simulation.run_simulation(**self.kwargs)


def _wait_for_judgments(study, at_least: int, run: Run, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while Judgment.objects.filter(assignment__comparison__study=study).count() < at_least:
        assert run.is_alive(), "the simulation ended before the fault"
        assert time.monotonic() < deadline, "the simulation made no progress"
        time.sleep(0.1)


def _finished(run: Run) -> simulation.SimulationReport:
    run.join(timeout=240)
    assert not run.is_alive(), "the simulated raters did not finish after the fault"
    assert run.report is not None
    return run.report


class Probe(threading.Thread):
    """Asks an API page every 20 ms and keeps what came back during the fault."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.seen: list[tuple[int, str, str, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                try:
                    r = http.get(
                        self.url,
                        headers={"Authorization": f"Token {self.token}"},
                        timeout=10,
                    )
                    self.seen.append(
                        (
                            r.status_code,
                            r.headers.get("Content-Type", ""),
                            r.headers.get("Retry-After", ""),
                            r.text[:500],
                        )
                    )
                except requests.RequestException:
                    pass
                time.sleep(0.02)


def _restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_postgresql_restart_mid_rating_run(_media_root, tmp_path):
    # Given raters halfway through a study served by gunicorn with persistent DB connections
    study = _study(_media_root, "pg-restart")
    accounts = simulation.create_simulated_raters(study=study, count=8, careless_share=0.0)
    token = Token.objects.create(user=UserFactory(username="probe")).key
    with gunicorn(
        db_url=database_url(),
        media_root=_media_root,
        log=tmp_path / "gunicorn.log",
        workers=2,
    ) as site:
        run = Run(
            base_url=site.url,
            study_slug=study.slug,
            accounts=accounts,
            behaviour=PACED,
            concurrency=8,
        )
        run.start()
        _wait_for_judgments(study, 15, run)
        probe = Probe(site.url + "api/raters/me/", token)
        probe.start()
        # When PostgreSQL restarts under them
        _restart_postgresql()
        connections.close_all()
        time.sleep(1.0)
        probe.stop.set()
        probe.join()
        report = _finished(run)
    # Then the raters saw friendly retry answers, never a 500 or a stack trace
    statuses = {status for status, *_ in probe.seen}
    assert 503 in statuses, f"the outage was not observed: {statuses}"
    assert not [s for s in statuses if s >= 500 and s != 503], statuses
    for status, content_type, retry_after, body in probe.seen:
        if status == 503:
            assert content_type.startswith("application/json") and retry_after.isdigit()
            assert "try again" in body and "Traceback" not in body
    # And every rater finished, with every 2xx-accepted judgment stored once
    assert not [e for r in report.results for e in r.errors], report.summary()
    assert report.outcomes() == {"done": 8}, report.summary()
    assert len(report.accepted) == 90
    assert_judgments_consistent(study, report.accepted)
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def test_web_server_sigkill_during_submits(_media_root, tmp_path):
    # Given raters submitting to gunicorn
    study = _study(_media_root, "sigkill")
    accounts = simulation.create_simulated_raters(study=study, count=8, careless_share=0.0)
    port = free_port()
    server = dict(
        db_url=database_url(),
        media_root=_media_root,
        log=tmp_path / "gunicorn.log",
        workers=2,
        port=port,
    )
    site = start_gunicorn(**server)
    restarted = None
    try:
        run = Run(
            base_url=site.url,
            study_slug=study.slug,
            accounts=accounts,
            behaviour=PACED,
            concurrency=8,
        )
        run.start()
        _wait_for_judgments(study, 15, run)
        # When the whole server is SIGKILLed mid-request and comes back a moment later
        site.kill()
        time.sleep(1.0)
        restarted = start_gunicorn(**server)
        report = _finished(run)
    finally:
        for live in (site, restarted):
            if live is not None and live.process.poll() is None:
                live.kill()
    # Then the raters resumed and finished, and nothing was half-written or counted twice
    assert sum(r.retries for r in report.results) > 0, "the kill was not felt"
    assert not [e for r in report.results for e in r.errors], report.summary()
    assert report.outcomes() == {"done": 8}, report.summary()
    assert len(report.accepted) == 90
    assert_judgments_consistent(study, report.accepted)


TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 2}


def _redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed"
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while (
        subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
        ).stdout.strip()
        != "PONG"
    ):
        assert time.monotonic() < deadline, "private redis-server did not start"
        time.sleep(0.1)
    return process


def test_redis_killed_mid_generation_batch(_media_root, tmp_path):
    # Given a durable private Redis broker and a real worker on the test database
    port = free_port()
    redis = _redis(port, tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(_media_root),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2",
        "JUICE_STUB_MODEL_SECONDS": "1",
    }
    generation_services.get_or_create_variant(name="Tiny redis", config=TINY, slug="tiny-redis")
    worker_log = tmp_path / "worker.log"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"a red circle moves left {i}" for i in range(6)) + "\n")
    worker = subprocess.Popen(
        # The orchestration tests' stub model (1 s per video): the broker is under test here.
        [sys.executable, "-m", "tests.generation.stub_worker", "worker", "-Q", "gpu,default"]
        + ["--concurrency", "1", "--pool", "solo", "--loglevel", "INFO"]
        + ["--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=worker_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # When a 6-video batch is launched and Redis is SIGKILLed once the first video exists
        subprocess.run(
            [sys.executable, "manage.py", "launch_batch", "--variants", "tiny-redis"]
            + ["--prompts", str(prompts), "--chunk-size", "1", "--name", "redis-fault"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
        )
        jobs = GenerationJob.objects.filter(batch__name="redis-fault")
        assert jobs.count() == 6
        deadline = time.monotonic() + 60
        while not Video.objects.filter(job__in=jobs).exists():
            assert worker.poll() is None and time.monotonic() < deadline, (
                f"no video was made: {list(jobs.values_list('status', 'error'))}\n"
                + worker_log.read_text()[-3000:]
            )
            time.sleep(0.2)
        redis.kill()
        redis.wait()
        done_at_kill = jobs.filter(status=GenerationJob.Status.DONE).count()
        assert done_at_kill < 6, "the batch finished before the fault"
        time.sleep(1.0)
        redis = _redis(port, tmp_path)
        # Then the batch completes once Redis is back
        deadline = time.monotonic() + 240
        while jobs.filter(status=GenerationJob.Status.DONE).count() < 6:
            assert worker.poll() is None, "the worker died"
            assert not jobs.filter(status=GenerationJob.Status.FAILED).exists(), (
                worker_log.read_text()[-3000:]
            )
            assert time.monotonic() < deadline, list(jobs.values_list("status", flat=True))
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        redis.kill()
        redis.wait()
    # With every video exactly once: one row per job and one file per row
    videos = Video.objects.filter(job__in=jobs)
    assert videos.count() == 6
    assert len({v.file.name for v in videos}) == 6
    on_disk = sorted(p.name for p in (_media_root / "videos").iterdir())
    assert len(on_disk) == 6, on_disk
