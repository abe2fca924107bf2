"""`make demo`: a working study from scratch, generated through a real Celery worker.

Every step reuses what a previous run made, so running it twice duplicates nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from generation import selectors as generation_selectors
from generation import services as generation_services
from generation.models import GenerationBatch, ModelVariant
from generation.video.config import SHOWCASE
from raters import studies
from raters.models import Study

ADMIN = ("admin", "admin-demo-password")
RATER = ("rater", "rater-demo-password")
STUDY_SLUG = "demo"
PROMPTS = (
    "a red circle moves left on a blue background",
    "a green square moves right on a black background",
    "a yellow triangle moves up on a purple background",
    "a blue circle grows on a white background",
    "a white square moves down on a red background",
    "a purple triangle moves left on a green background",
)
# Both rendered as the showcase renders the built-in family (docs/method.md): temporal decoding
# and the temporal filter take the flicker off, and interpolation makes 29 frames at 16 fps of
# the 8 at 4, so raters judge motion. A variant's config is kept forever once used, so an
# install whose demo rated the earlier configs gets new versions and a new study.
VARIANTS: tuple[tuple[str, str, dict[str, object]], ...] = (
    (
        "Factorized, zero-SNR",
        "factorized-zero-snr",
        {"mode": "factorized", "schedule": "zero_snr", **SHOWCASE},
    ),
    (
        "Direct, zero-SNR",
        "direct-zero-snr",
        {"mode": "direct", "schedule": "zero_snr", **SHOWCASE},
    ),
)


@dataclass(frozen=True)
class DemoSetup:
    study: Study
    batch: GenerationBatch
    variants: tuple[ModelVariant, ...]


def ensure_users() -> None:
    users = get_user_model()
    if not users.objects.filter(username=ADMIN[0]).exists():
        users.objects.create_superuser(ADMIN[0], "admin@example.com", ADMIN[1])
    if not users.objects.filter(username=RATER[0]).exists():
        users.objects.create_user(RATER[0], password=RATER[1])


def ensure_batch() -> tuple[GenerationBatch, tuple[ModelVariant, ...]]:
    variants = tuple(
        generation_services.get_or_create_variant(name=name, slug=slug, config=config)
        for name, slug, config in VARIANTS
    )
    prompt_set = generation_services.get_or_create_prompt_set(name="Demo prompts", prompts=PROMPTS)
    batch = GenerationBatch.objects.filter(name="demo", prompt_set=prompt_set).first()
    if batch is None or set(batch.variants.all()) != set(variants):
        # One video per sampling call: each is recorded as soon as it is made, so progress
        # moves per video instead of per group of four.
        batch = generation_services.create_batch(
            name="demo", prompt_set=prompt_set, variants=variants, seeds=1, sample_batch=1
        )
    else:
        generation_services.launch_batch(batch=batch)
    return batch, variants


def port_problem(addrport: str) -> str | None:
    """Why the site could not be served on `addrport` ("host:port"), or None if it can."""
    host, _, port = addrport.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"{addrport!r} is not host:port (e.g. 127.0.0.1:8000)."
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "127.0.0.1", int(port)))
        except OSError as exc:
            return (
                f"Port {port} on {host or '127.0.0.1'} is not free ({exc.strerror}). "
                f"Stop what uses it, or pick another: make demo PORT={int(port) + 1}"
            )
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM if the demo process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_environment(environ: Mapping[str, str], *, cpus: int | None) -> dict[str, str]:
    """The demo worker's environment: the project's settings, and torch on one core fewer than
    the machine has (at least one), unless OMP_NUM_THREADS says otherwise. The web server and
    the browser share the machine with it, and torch's threads that wait for a busy core spin:
    on two cores, two threads made generation several times slower whenever another process
    was busy."""
    return {
        **environ,
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
        "OMP_NUM_THREADS": environ.get("OMP_NUM_THREADS") or str(max(1, (cpus or 1) - 1)),
    }


def start_worker() -> subprocess.Popen[bytes]:
    """A Celery worker on both queues, as its own process (no eager mode), that does not
    outlive the demo."""
    return subprocess.Popen(
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
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=settings.BASE_DIR,
        env=worker_environment(os.environ, cpus=os.cpu_count()),
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown, then a kill if it takes more than 30 s."""
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def wait_for_batch(
    batch: GenerationBatch,
    *,
    timeout_s: float,
    on_progress: Callable[[dict[str, int]], None],
    worker: subprocess.Popen[bytes] | None = None,
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = generation_selectors.batch_progress(batch=batch)
        on_progress(counts)
        if counts["done"] + counts["failed"] + counts["cancelled"] >= counts["total"]:
            return counts
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"The Celery worker exited with code {worker.returncode}.")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Generation did not finish in {timeout_s:.0f} s: {counts}")
        time.sleep(1.0)


def ensure_study(
    batch: GenerationBatch, variants: tuple[ModelVariant, ...]
) -> tuple[Study, str | None]:
    """The demo study of `variants`, and the slug an earlier demo study was moved to, if the
    one at STUDY_SLUG compared other variants (other versions: an install from before the demo's
    configs changed). That study keeps its comparisons and judgments under the new slug."""
    study = Study.objects.filter(slug=STUDY_SLUG).first()
    moved = None
    if study is not None and set(study.pairs.values_list("variant_a", "variant_b")) != {
        (variants[0].pk, variants[1].pk)
    }:
        moved = _set_aside(study)
        study = None
    if study is None:
        study = studies.create_study(
            name="Demo: factorized vs direct",
            slug=STUDY_SLUG,
            sources=[batch],
            pairs=[(variants[0], variants[1])],
            raters_per_pair=5,
            # Hidden checks from the start: one side degraded (frozen, blurred, shuffled...).
            gold_comparisons=4,
        )
        return study, moved
    studies.rebuild_comparisons(study=study)
    return study, moved


def _set_aside(study: Study) -> str:
    """Move an earlier demo study to the first free `demo-earlier-N` slug; returns it."""
    n = 1
    while Study.objects.filter(slug=f"{STUDY_SLUG}-earlier-{n}").exists():
        n += 1
    study.slug = f"{STUDY_SLUG}-earlier-{n}"
    study.name = f"{study.name} (earlier demo {n})"
    study.save(update_fields=["slug", "name"])
    return study.slug
