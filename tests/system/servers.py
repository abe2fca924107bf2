"""Real servers for system tests and benchmarks: gunicorn on a given database, bulk studies.

Not a test module: tests/system/test_*.py and benchmarks/bench_load.py import it.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# One key per process: a restarted server must accept the sessions the first one signed.
SECRET_KEY = secrets.token_urlsafe(50)


def _secret_key() -> str:
    """This process's Django key when it has one: simulated raters made here resume through
    start links signed with it, so the servers started here must share it."""
    from django.conf import settings

    return str(settings.SECRET_KEY) if settings.configured else SECRET_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recreate_database(pg: str, name: str) -> str:
    """Drop and create database `name` on the server at `pg`; its URL (benchmarks only)."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg}/{name}"


@dataclass
class LiveSite:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole server (arbiter and workers): no graceful shutdown."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def _processes(keep: Callable[[Path], bool]) -> list[int]:
    """The ids of the running processes whose /proc entry `keep` accepts (one that exits while
    being read is left out)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if keep(entry):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def family(parent: int) -> list[int]:
    """A process and its direct children (gunicorn arbiter + workers, nginx master + workers)."""

    def child(entry: Path) -> bool:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]) == parent

    return [parent, *_processes(child)]


def processes_named(name: str) -> list[int]:
    """Every process whose command name is `name` (PostgreSQL's backends, say)."""
    return _processes(lambda entry: (entry / "comm").read_text().strip() == name)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_env(*, db_url: str, media_root: Path, debug: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DATABASE_URL=db_url,
        MEDIA_ROOT=str(media_root),
        DJANGO_SETTINGS_MODULE="benchmarks.site_settings",
        DJANGO_DEBUG="1" if debug else "0",
        DJANGO_SECRET_KEY=_secret_key(),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_gunicorn(
    *,
    db_url: str,
    media_root: Path,
    log: Path,
    workers: int = 2,
    threads: int = 1,
    port: int | None = None,
    conn_max_age: int = 60,
    extra_env: dict[str, str] | None = None,
) -> LiveSite:
    port = port or free_port()
    env = server_env(db_url=db_url, media_root=media_root)
    env["DATABASE_CONN_MAX_AGE"] = str(conn_max_age)
    env.update(extra_env or {})
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "evalsite.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--error-logfile",
                "-",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    site = LiveSite(url=f"http://127.0.0.1:{port}/", process=process, log=log)
    wait_until_up(site)
    return site


def wait_until_up(site: LiveSite, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if site.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {site.log.read_text()[-2000:]}")
        try:
            requests.get(site.url + "accounts/login/", timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout_s} s")


@contextmanager
def gunicorn(**kwargs) -> Iterator[LiveSite]:  # type: ignore[no-untyped-def]
    site = start_gunicorn(**kwargs)
    try:
        yield site
    finally:
        if site.process.poll() is None:
            os.killpg(site.process.pid, signal.SIGTERM)
            try:
                site.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                site.kill()


def build_bulk_study(
    *,
    comparisons: int,
    pairs: int = 5,
    raters_per_pair: int = 5,
    slug: str = "load-study",
    media_root: Path,
    **study_fields,  # type: ignore[no-untyped-def]
):  # type: ignore[no-untyped-def]
    """A study of `comparisons` real comparisons over `pairs` variant pairs, built in bulk.

    Every video row points at one shared tiny MP4: delivery cost is measured separately by
    benchmarks/bench_video_delivery.py.
    """
    from generation.models import (
        GenerationBatch,
        GenerationJob,
        ModelVariant,
        Prompt,
        PromptSet,
        Video,
    )
    from raters.models import Comparison, Study, VariantPair
    from tests.factories import tiny_mp4_bytes

    (media_root / "videos").mkdir(parents=True, exist_ok=True)
    (media_root / "posters").mkdir(parents=True, exist_ok=True)
    (media_root / "videos" / "shared.mp4").write_bytes(tiny_mp4_bytes())
    (media_root / "posters" / "shared.png").write_bytes(b"\x89PNG\r\n\x1a\n")

    per_pair = -(-comparisons // pairs)
    prompt_set = PromptSet.objects.create(name=f"{slug} prompts", slug=f"{slug}-prompts")
    prompts = Prompt.objects.bulk_create(
        Prompt(prompt_set=prompt_set, external_id=str(i), text=f"a red circle moves left {i}")
        for i in range(per_pair)
    )
    variants = [
        ModelVariant.objects.create(
            name=f"{slug} variant {i}", slug=f"{slug}-v{i}", config={"steps": 2}
        )
        for i in range(pairs + 1)
    ]
    batch = GenerationBatch.objects.create(name=slug, prompt_set=prompt_set)
    jobs = GenerationJob.objects.bulk_create(
        GenerationJob(batch=batch, variant=v, prompt=p, seed=0, status=GenerationJob.Status.DONE)
        for v in variants
        for p in prompts
    )
    videos = Video.objects.bulk_create(
        Video(
            job=job,
            file="videos/shared.mp4",
            poster="posters/shared.png",
            frames=8,
            fps=4,
            width=16,
            height=16,
            seconds_spent=0.1,
        )
        for job in jobs
    )
    by_variant = {
        v.id: {
            job.prompt_id: video
            for job, video in zip(jobs, videos, strict=True)
            if job.variant_id == v.id
        }
        for v in variants
    }
    study = Study.objects.create(
        name=slug, slug=slug, raters_per_pair=raters_per_pair, **study_fields
    )
    study.batches.add(batch)
    rows = []
    for i in range(pairs):
        pair = VariantPair.objects.create(
            study=study, variant_a=variants[0], variant_b=variants[i + 1]
        )
        for prompt in prompts:
            if len(rows) >= comparisons:
                break
            rows.append(
                Comparison(
                    study=study,
                    pair=pair,
                    prompt=prompt,
                    video_a=by_variant[variants[0].id][prompt.id],
                    video_b=by_variant[variants[i + 1].id][prompt.id],
                )
            )
    Comparison.objects.bulk_create(rows, batch_size=1000)
    return study


def assert_judgments_consistent(study, accepted: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Every accepted token judged once, none over-assigned, no half-written judgment."""
    from django.db.models import Count

    from raters.models import Assignment, Comparison, Judgment

    judged_tokens = Counter(
        str(t)
        for t in Judgment.objects.filter(assignment__comparison__study=study).values_list(
            "assignment__token", flat=True
        )
    )
    missing = [t for t in accepted if judged_tokens[t] != 1]
    assert not missing, f"{len(missing)} accepted judgments not stored exactly once"
    over = (
        Comparison.objects.filter(study=study)
        .annotate(held=Count("assignments"))
        .filter(held__gt=study.raters_per_pair)
    )
    assert not over.exists(), "a comparison was assigned to more raters than asked"
    # No half-written judgment: a judgment always comes with its assignment marked done.
    assert not Judgment.objects.exclude(assignment__status=Assignment.Status.DONE).exists()
    assert not Assignment.objects.filter(
        comparison__study=study, status=Assignment.Status.DONE, judgment__isnull=True
    ).exists()
