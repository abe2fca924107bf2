"""Real Celery worker processes for system, browser and benchmark runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from tests.databases import database_url

# The worker processes use the stub model unless JUICE_TEST_MODEL=real, which runs the shipped
# pipeline (it needs the trained checkpoints in generation/checkpoints/).
STUB_MODEL = os.environ.get("JUICE_TEST_MODEL", "stub") != "real"


def reset_broker() -> None:
    """Drop messages left by earlier runs: queued ones and, on Redis, unacknowledged ones."""
    from evalsite.celery import app

    app.control.purge()
    if settings.CELERY_BROKER_URL.startswith("redis"):
        with app.connection_for_write() as conn:
            client = conn.default_channel.client
            client.delete("unacked", "unacked_index", "unacked_mutex")


def start_worker(
    name: str,
    *,
    media_root: Path,
    stub_model: bool = False,
    queues: str = "gpu,default",
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """One worker as in production (`-c 1`, prefetch 1), in its own process group."""
    module = "tests.generation.stub_worker" if stub_model else "celery"
    prefix = ["--quiet"] if stub_model else ["-A", "evalsite", "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-m", module, *prefix, "worker", "-Q", queues, "-c", "1"]
        + ["--prefetch-multiplier", "1", "-n", f"{name}@%h", "--loglevel", "WARNING"]
        + ["--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(media_root),
            "CELERY_BROKER_DIR": str(settings.CELERY_BROKER_DIR),
            "OMP_NUM_THREADS": "1",  # two cores: one torch thread per worker, no contention
            **(env or {}),
        },
        start_new_session=True,
    )


def node_name(name: str) -> str:
    import socket

    return f"{name}@{socket.gethostname()}"


def wait_for_workers(names: list[str], *, timeout_s: float = 90) -> None:
    """Until every named worker answers a ping (needs a broker with broadcast: Redis)."""
    from evalsite.celery import app

    wanted = {node_name(n) for n in names}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if wanted <= {node for reply in replies for node in reply}:
            return
    raise TimeoutError(f"workers {sorted(wanted)} did not answer within {timeout_s} s")


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool child at once, as when a machine dies."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill(process)


@contextmanager
def running_workers(
    names: list[str], *, media_root: Path, **options: object
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    workers = {name: start_worker(name, media_root=media_root, **options) for name in names}  # type: ignore[arg-type]
    try:
        yield workers
    finally:
        for process in workers.values():
            stop(process)
