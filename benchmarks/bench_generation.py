"""Generation speed of the shipped default variant (factorized, zero-SNR) on this machine.

Prints, measured in the same run: the median wall time of one 8-frame video generated alone,
and the time per video when 16 prompts are generated as one batch, with their ratio.

    python benchmarks/bench_generation.py [--repeats 5] [--batch 16] [--threads 2]
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
    parser.add_argument("--batch", type=int, default=16)
    # One thread: on this shared 2-core machine a second one mostly waits at barriers.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", default="factorized")
    args = parser.parse_args()

    import torch

    from generation.video.config import VariantConfig
    from generation.video.data import held_out_prompts
    from generation.video.pipeline import load_generator

    torch.set_num_threads(args.threads)
    config = VariantConfig.from_dict({"mode": args.mode, "schedule": "zero_snr"})
    gen = load_generator(config, "cpu")
    prompts = (held_out_prompts() * 4)[: args.batch]
    gen.generate(prompts[:2], [0, 1])  # warm-up: allocator, text cache
    singles = []
    for i in range(args.repeats):
        started = time.perf_counter()
        gen.generate([prompts[i % len(prompts)]], [100 + i])
        singles.append(time.perf_counter() - started)
    batched = []
    for i in range(max(1, args.repeats // 2)):
        started = time.perf_counter()
        gen.generate(prompts, list(range(200 + i * 100, 200 + i * 100 + len(prompts))))
        batched.append((time.perf_counter() - started) / len(prompts))
    one, per = statistics.median(singles), statistics.median(batched)
    print(
        f"variant: {args.mode}, zero_snr, {config.frames} frames {config.height}x{config.width}, "
        f"{config.steps} DDIM steps, {torch.get_num_threads()} threads"
    )
    print(f"{'one video alone (median of ' + str(args.repeats) + ')':<40} {one:8.3f} s")
    print(f"{'per video in a batch of ' + str(args.batch):<40} {per:8.3f} s")
    print(f"{'batch speed-up per video':<40} {one / per:8.2f} x")


if __name__ == "__main__":
    main()
