"""Generation speed of the shipped default variant (factorized, zero-SNR) on this machine.

Prints, measured in the same run, for each precision asked for: the median wall time of one
8-frame video generated alone and the time per video in batches, with their ratio; with more
than one precision, each one's speed-up over float32 and how far its videos are from the
float32 videos of the same prompts and seeds (mean absolute difference in 0-255 levels).

    python benchmarks/bench_generation.py [--repeats 5] [--batch 16] [--threads 2]
    python benchmarks/bench_generation.py --device cuda --precisions float32,bfloat16,float16 \\
        --batch 16,64,256

With --diffusers it measures the platform around a saved diffusers pipeline instead (tiny
random-weight CogVideoX, LTX and Wan folders built offline in a temporary folder), printing
seconds per video for the same prompts and seeds:
- the pipeline called directly in a loop of sampling batches;
- through the platform: the worker's `render_chunk` (claim, sampling, MP4 + poster encoding on
  its pool, move into storage, records) on a temporary SQLite database;
and, with a stub model that sleeps 5 ms per video (a GPU's pace: the CPU is free meanwhile), the
worker's videos per second against its encoding pool's own throughput on the same videos.

    python benchmarks/bench_generation.py --diffusers [--videos 64] [--batch 64] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", default="16", help="batch sizes, comma-separated")
    # One thread: on this shared 2-core machine a second one mostly waits at barriers.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", default="factorized")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="float32", help="comma-separated")
    parser.add_argument("--diffusers", action="store_true", help="saved diffusers pipelines")
    parser.add_argument("--families", default="cogvideox,ltx,wan", help="with --diffusers")
    parser.add_argument("--videos", type=int, default=64, help="with --diffusers: per family")
    parser.add_argument("--steps", type=int, default=20, help="with --diffusers")
    parser.add_argument("--stub-ms", type=float, default=5.0, help="with --diffusers")
    parser.add_argument(
        "--compare-cpu",
        action="store_true",
        help="also render the comparison videos on the CPU in float32 and say how far the "
        "device's float32 videos are from them",
    )
    args = parser.parse_args()
    if args.diffusers:
        bench_diffusers(args)
        return

    import numpy as np
    import torch

    from generation.video.config import VariantConfig
    from generation.video.data import held_out_prompts
    from generation.video.pipeline import check_precision, clear_loaded, load_generator

    torch.set_num_threads(args.threads)
    precisions = [check_precision(p) for p in args.precisions.split(",")]
    batches = [int(b) for b in args.batch.split(",")]
    config = VariantConfig.from_dict({"mode": args.mode, "schedule": "zero_snr"})
    pool = held_out_prompts()

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(gen, prompts, seeds):  # type: ignore[no-untyped-def]
        sync()
        started = time.perf_counter()
        videos = gen.generate(prompts, seeds)
        sync()
        return videos, time.perf_counter() - started

    print(
        f"variant: {args.mode}, zero_snr, {config.frames} frames {config.height}x{config.width}, "
        f"{config.steps} DDIM steps, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
        + f", {torch.get_num_threads()} threads"
    )
    # The same prompts and seeds for every precision, so videos can be compared one to one.
    check_prompts = (pool * 4)[:16]
    check_seeds = list(range(1000, 1000 + len(check_prompts)))
    results: dict[str, dict[str, float]] = {}
    frames: dict[str, np.ndarray] = {}
    for precision in precisions:
        gen = load_generator(config, args.device, precision)
        gen.generate(pool[:2], [0, 1])  # warm-up: allocator, kernels, text cache
        row: dict[str, float] = {}
        singles = [timed(gen, [pool[i % len(pool)]], [100 + i])[1] for i in range(args.repeats)]
        row["alone"] = statistics.median(singles)
        for size in batches:
            prompts = (pool * (size // len(pool) + 1))[:size]
            per_video = []
            for i in range(max(1, args.repeats // 2)):
                seeds = list(range(200 + i * size, 200 + (i + 1) * size))
                per_video.append(timed(gen, prompts, seeds)[1] / size)
            row[f"batch {size}"] = statistics.median(per_video)
        results[precision] = row
        frames[precision] = np.stack(
            [v.frames for v in gen.generate(check_prompts, check_seeds)]
        ).astype(np.int16)
        del gen
        clear_loaded()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()

    columns = list(next(iter(results.values())))
    print(f"\nseconds per video{'':<12}" + "".join(f"{c:>14}" for c in columns))
    for precision, row in results.items():
        print(f"  {precision:<27}" + "".join(f"{row[c]:14.4f}" for c in columns))
    for precision, row in results.items():
        best = min(row[c] for c in columns if c != "alone")
        print(f"  {precision}: batching speed-up per video {row['alone'] / best:.2f} x")
    if "float32" in results and len(results) > 1:
        base = results["float32"]
        for precision, row in results.items():
            if precision == "float32":
                continue
            speed = " ".join(f"{c} {base[c] / row[c]:.2f}x" for c in columns)
            off = np.abs(frames[precision] - frames["float32"])
            print(
                f"  {precision} vs float32: speed-up {speed}; videos off by {off.mean():.2f} "
                f"levels on average (max {off.max()}), over {len(check_seeds)} videos"
            )

    if args.compare_cpu and "float32" in frames:
        cpu = load_generator(config, "cpu", "float32")
        on_cpu = np.stack([v.frames for v in cpu.generate(check_prompts, check_seeds)])
        off = np.abs(frames["float32"] - on_cpu.astype(np.int16))
        print(
            f"  float32 on {args.device} vs on the CPU: videos off by {off.mean():.2f} levels on "
            f"average (max {off.max()}), over {len(check_seeds)} videos"
        )


def _django(tmp: Path) -> None:
    """Django on a throw-away SQLite database and media folder, migrated."""
    import os

    os.environ.update(
        DJANGO_SETTINGS_MODULE="evalsite.settings",
        JUICE_VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        HF_HUB_OFFLINE="1",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bench_diffusers(args: argparse.Namespace) -> None:
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="juice-bench-") as name:
        tmp = Path(name)
        _django(tmp)
        from django.conf import settings

        from generation import services
        from generation.video.pipeline import clear_loaded, load_generator
        from tests.generation import tiny_pipelines

        batch_size = int(args.batch.split(",")[0])
        prompts = [
            f"a {c} circle moves left, take {i}" for i, c in enumerate(["red"] * args.videos)
        ]
        print(
            f"{args.videos} videos per family, sampling batch {batch_size}, {args.steps} steps, "
            f"{tiny_pipelines.FRAMES} frames {tiny_pipelines.SIZE}x{tiny_pipelines.SIZE}, "
            f"{torch.get_num_threads()} torch threads, {settings.JUICE_ENCODE_WORKERS} encoders"
        )
        print(f"\n{'family':<11}{'direct s/video':>16}{'platform s/video':>18}{'ratio':>8}")
        for family in args.families.split(","):
            folder = tiny_pipelines.save(family, tmp / "pipelines")
            config = tiny_pipelines.variant_config(family, folder, steps=args.steps)
            variant = services.register_variant(name=f"bench {family}", config=config).variant
            generator = load_generator(services.variant_config(variant))
            generator.generate(prompts[:2], [0, 1])  # warm-up
            started = time.perf_counter()
            for i in range(0, len(prompts), batch_size):
                generator.generate(
                    prompts[i : i + batch_size], [0] * len(prompts[i : i + batch_size])
                )
            direct = (time.perf_counter() - started) / len(prompts)
            platform = _platform_seconds(services, variant, prompts, batch_size, f"{family}")
            print(f"{family:<11}{direct:16.4f}{platform:18.4f}{platform / direct:8.3f}")
            clear_loaded()
        _bench_stub(args, services, prompts, batch_size)


def _platform_seconds(services, variant, prompts, batch_size, name):  # type: ignore[no-untyped-def]
    prompt_set = services.get_or_create_prompt_set(name=f"bench {name}", prompts=prompts)
    batch = services.create_batch(
        name=name,
        prompt_set=prompt_set,
        variants=[variant],
        chunk_size=len(prompts),
        sample_batch=batch_size,
    )
    ids = list(batch.jobs.order_by("pk").values_list("pk", flat=True))
    started = time.perf_counter()
    outcome = services.render_chunk(job_ids=ids, worker="bench")
    seconds = time.perf_counter() - started
    assert outcome.recorded == len(prompts), outcome
    return seconds / len(prompts)


def _bench_stub(args, services, prompts, batch_size) -> None:  # type: ignore[no-untyped-def]
    """End-to-end worker throughput with a 5 ms/video stub model against the encoders alone."""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    from generation.video import pipeline
    from tests.generation.fakes import FakeGenerator

    stub = FakeGenerator(frames=9, size=32, fps=8, seconds_per_video=args.stub_ms / 1000)
    videos = stub.generate(prompts, list(range(len(prompts))))
    encoders = settings.JUICE_ENCODE_WORKERS
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=encoders) as pool:
        for encoded in pool.map(services._encode, videos):
            import shutil

            shutil.rmtree(encoded.folder)
    pool_rate = len(videos) / (time.perf_counter() - started)

    original = pipeline.load_generator
    pipeline.load_generator = lambda config, device="cpu", precision="float32": stub  # type: ignore[assignment]
    try:
        variant = services.register_variant(
            name="bench stub", config={"kind": "emu", "steps": 1}
        ).variant
        seconds = _platform_seconds(services, variant, prompts, batch_size, "stub")
    finally:
        pipeline.load_generator = original  # type: ignore[assignment]
    worker_rate = 1 / seconds
    print(
        f"\nstub model {args.stub_ms:g} ms/video: worker {worker_rate:.1f} videos/s, "
        f"encoding pool alone ({encoders} threads) {pool_rate:.1f} videos/s, "
        f"ratio {worker_rate / pool_rate:.2f} (target >= 0.8)"
    )


if __name__ == "__main__":
    main()
