"""Scheduling overhead of generation batches through real Celery workers (Redis + PostgreSQL).

For each batch size (default 100 and 1,000 jobs) it launches a batch of tiny jobs into running
workers and prints:
- overhead per job: (wall × workers − Σ model time) / jobs, i.e. worker time per job spent
  outside the model: claiming rows, MP4 + poster encoding, storage moves, records, broker;
- of which MP4 + poster encoding, measured alone in this process;
- ratio of end-to-end wall time (enqueue of the first job → record of the last) to Σ model time
  (ideal: 1 / workers);
- median and p95 enqueue → recorded latency (includes waiting in the queue).

The model is the stub from tests/generation (a fixed sleep per video, JUICE_STUB_MODEL_SECONDS),
so the numbers measure the platform, not a network; `--real-model` uses the shipped pipeline
with a 1-step config instead.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/juice_eval \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \\
    .venv/bin/python benchmarks/bench_scheduling.py [--sizes 100,1000] [--workers 2]

It creates and drops its own database (<name>_bench_scheduling) next to DATABASE_URL's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = {
    "mode": "factorized",
    "schedule": "zero_snr",
    "steps": 1,
    "frames": 4,
    "height": 16,
    "width": 16,
}


def bench_database_url(url: str) -> tuple[str, str, str]:
    parsed = urlparse(url)
    name = f"{parsed.path.lstrip('/') or 'juice_eval'}_bench_scheduling"
    admin = urlunparse(parsed._replace(path="/postgres"))
    return urlunparse(parsed._replace(path=f"/{name}")), admin, name


def recreate_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            c.execute(f'CREATE DATABASE "{name}"')


def encoding_seconds(samples: int = 10) -> float:
    import numpy as np

    from generation.video.export import write_mp4, write_poster

    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        write_mp4(frames, f"{tmp}/warm.mp4", 4)
        started = time.perf_counter()
        for i in range(samples):
            write_mp4(frames, f"{tmp}/{i}.mp4", 4)
            write_poster(frames[0], f"{tmp}/{i}.png")
    return (time.perf_counter() - started) / samples


def run_batch(size: int, workers: int, variant: object, chunk_size: int) -> dict[str, float]:
    from django.db.models import Max, Min, Sum

    from generation import selectors, services
    from generation.models import GenerationJob, Video

    prompts = [f"a red circle moves left, take {i}" for i in range(size)]
    prompt_set = services.get_or_create_prompt_set(
        name=f"bench {size} {time.time()}", prompts=prompts
    )
    started = time.perf_counter()
    batch = services.create_batch(
        name=f"bench {size}", prompt_set=prompt_set, variants=[variant], chunk_size=chunk_size
    )
    enqueue_s = time.perf_counter() - started
    counts = selectors.follow_batch(
        batch=batch, on_progress=lambda c: None, poll_s=0.25, timeout_s=3600
    )
    if counts["done"] != size:
        raise RuntimeError(f"batch did not complete: {counts}")
    jobs = GenerationJob.objects.filter(batch=batch)
    span = jobs.aggregate(first=Min("queued_at"), last=Max("finished_at"))
    wall = (span["last"] - span["first"]).total_seconds()
    model = Video.objects.filter(job__batch=batch).aggregate(s=Sum("seconds_spent"))["s"]
    latencies = sorted(
        (finished - queued).total_seconds()
        for queued, finished in jobs.values_list("queued_at", "finished_at")
    )
    return {
        "jobs": size,
        "enqueue_s": enqueue_s,
        "wall_s": wall,
        "model_s": model,
        "overhead_ms": 1000 * (wall * workers - model) / size,
        "ratio": wall / model,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
    }


def launch_side(jobs_per_variant: int) -> dict[str, float]:
    """Create (and enqueue) a 2-variant batch with no worker running; time the progress report."""
    from generation import selectors, services

    variants = [
        services.get_or_create_variant(name="Launch A", config=TINY),
        services.get_or_create_variant(name="Launch B", config={**TINY, "mode": "direct"}),
    ]
    prompts = [f"a prompt {i}" for i in range(jobs_per_variant // 5)]
    prompt_set = services.get_or_create_prompt_set(name=f"launch {time.time()}", prompts=prompts)
    started = time.perf_counter()
    batch = services.create_batch(name="launch", prompt_set=prompt_set, variants=variants, seeds=5)
    create_s = time.perf_counter() - started
    started = time.perf_counter()
    report = selectors.batch_report(batch=batch)
    report_s = time.perf_counter() - started
    services.cancel_batch(batch=batch)
    return {"jobs": report["total"], "create_s": create_s, "report_ms": 1000 * report_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--model-seconds", type=float, default=0.05, help="stub time per video")
    parser.add_argument("--real-model", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("CELERY_BROKER_URL", "").startswith(
        "redis"
    ):
        sys.exit("Set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… (see --help).")
    bench_url, admin_url, name = bench_database_url(url)
    recreate_database(admin_url, name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    media = tempfile.mkdtemp(prefix="bench-scheduling-media-")
    os.environ["MEDIA_ROOT"] = media

    import django

    django.setup()
    from django.core.management import call_command

    from generation import services
    from tests.generation import workers as w

    call_command("migrate", verbosity=0)
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    w.reset_broker()
    names = [f"bench{i}" for i in range(args.workers)]
    env = {"JUICE_STUB_MODEL_SECONDS": str(args.model_seconds)}
    encode = encoding_seconds()
    launch = launch_side(5000)
    w.reset_broker()  # the launch-side batch is cancelled: drop its messages
    rows = []
    try:
        with w.running_workers(
            names, media_root=Path(media), stub_model=not args.real_model, env=env
        ):
            w.wait_for_workers(names)
            run_batch(2 * args.workers * args.chunk_size, args.workers, variant, args.chunk_size)
            for size in (int(s) for s in args.sizes.split(",")):
                rows.append(run_batch(size, args.workers, variant, args.chunk_size))
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, name, drop_only=True)

    model = "shipped pipeline, 1 step" if args.real_model else f"stub {args.model_seconds}s/video"
    print(f"{args.workers} workers (-c 1, prefetch 1), chunks of {args.chunk_size}, model: {model}")
    print(f"MP4 + poster encoding alone: {1000 * encode:.1f} ms per video")
    print(
        f"launch side, {launch['jobs']} jobs: create + enqueue {launch['create_s']:.2f} s, "
        f"progress report {launch['report_ms']:.0f} ms"
    )
    print(
        f"{'jobs':>6} {'enqueue':>8} {'wall':>8} {'Σ model':>8} {'overhead/job':>13} "
        f"{'w/o encoding':>13} {'wall/Σmodel':>11} {'p50 lat':>8} {'p95 lat':>8}"
    )
    for r in rows:
        print(
            f"{r['jobs']:>6} {r['enqueue_s']:>7.2f}s {r['wall_s']:>7.1f}s {r['model_s']:>7.1f}s "
            f"{r['overhead_ms']:>10.1f} ms {r['overhead_ms'] - 1000 * encode:>10.1f} ms "
            f"{r['ratio']:>11.2f} {r['p50_s']:>7.1f}s {r['p95_s']:>7.1f}s"
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(
            f"overhead per job from {first['jobs']} to {last['jobs']} jobs: "
            f"{first['overhead_ms']:.1f} → {last['overhead_ms']:.1f} ms "
            f"(×{last['overhead_ms'] / first['overhead_ms']:.2f})"
        )


if __name__ == "__main__":
    main()
