"""Generation speed of the shipped default variant (factorized, zero-SNR) on this machine.

Prints, measured in the same run, for each precision asked for: the median wall time of one
8-frame video generated alone and the time per video in batches, with their ratio; with more
than one precision, each one's speed-up over float32 and how far its videos are from the
float32 videos of the same prompts and seeds (mean absolute difference in 0-255 levels).

    python benchmarks/bench_generation.py [--repeats 5] [--batch 16] [--threads 2]
    python benchmarks/bench_generation.py --device cuda --precisions float32,bfloat16,float16 \\
        --batch 16,64,256
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
    parser.add_argument(
        "--compare-cpu",
        action="store_true",
        help="also render the comparison videos on the CPU in float32 and say how far the "
        "device's float32 videos are from them",
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    from generation.video.config import VariantConfig
    from generation.video.data import held_out_prompts
    from generation.video.pipeline import check_precision, load_generator

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
        load_generator.cache_clear()
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


if __name__ == "__main__":
    main()
