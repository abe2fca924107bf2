"""Automatic scores of each ablation pair (SPEC §3 Table 1) on held-out prompts, side by side.

For every shipped variant: ≥ 64 videos on the held-out attribute combinations (never seen in
training), judged by the procedural classifier: faithfulness (share of colour, shape and
motion right), each attribute's accuracy, and the Fréchet distance (FVD-style, classifier
features) to real videos of the same prompts. Real videos are scored too, as the ceiling.

    python benchmarks/bench_ablation_metrics.py [--seeds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAIRS = (
    ("(a) factorized vs direct", {}, {"mode": "direct"}),
    ("(b) zero-SNR vs standard", {}, {"schedule": "standard"}),
    ("(c) multi-stage vs single", {"multistage": True}, {}),
    ("(d) HQ fine-tuned vs not", {"hq_finetune": True}, {}),
    ("(e) frozen vs fine-tuned spatial", {}, {"spatial": "finetuned"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=24)
    args = parser.parse_args()

    import numpy as np
    import torch

    from generation.video import checkpoints, metrics
    from generation.video.config import VariantConfig
    from generation.video.data import held_out_prompts, reference_videos
    from generation.video.pipeline import load_generator

    torch.set_num_threads(args.threads)
    root = checkpoints.checkpoint_dir()
    classifier, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)
    prompts = [p for p in held_out_prompts() for _ in range(args.seeds)]
    seeds = list(range(len(prompts)))
    real = reference_videos(prompts, seed=0).videos

    def summary(videos: list[np.ndarray]) -> dict[str, float]:
        scores = metrics.score_videos(classifier, videos, prompts)
        return {
            "faith": float(np.mean([s.faithfulness for s in scores])),
            "colour": float(np.mean([s.color_ok for s in scores])),
            "shape": float(np.mean([s.shape_ok for s in scores])),
            "motion": float(np.mean([s.motion_ok for s in scores])),
            "fd": metrics.frechet_distance(classifier, videos, real),
        }

    cache: dict[str, dict[str, float]] = {}

    def run(overrides: dict[str, object]) -> dict[str, float]:
        key = repr(sorted(overrides.items()))
        if key not in cache:
            gen = load_generator(VariantConfig.from_dict(dict(overrides)), "cpu")
            started = time.perf_counter()
            videos = []
            for i in range(0, len(prompts), args.batch):
                out = gen.generate(prompts[i : i + args.batch], seeds[i : i + args.batch])
                videos.extend(v.frames for v in out)
            cache[key] = {**summary(videos), "s": time.perf_counter() - started}
        return cache[key]

    print(
        f"{len(prompts)} videos per variant on {len(set(prompts))} held-out prompts; "
        f"classifier {version}"
    )
    header = f"{'variant':<34}{'faith':>7}{'colour':>8}{'shape':>7}{'motion':>8}{'FD':>8}"
    print(header)
    ceiling = summary(list(real))
    print(
        f"{'real videos (ceiling)':<34}{ceiling['faith']:7.3f}{ceiling['colour']:8.3f}"
        f"{ceiling['shape']:7.3f}{ceiling['motion']:8.3f}{ceiling['fd']:8.2f}"
    )
    print("chance: colour 0.167, shape 0.333, motion 0.167")
    for title, preferred, other in PAIRS:
        print(title)
        for label, overrides in (("  preferred: ", preferred), ("  against:   ", other)):
            r = run(overrides)
            name = label + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "default")
            print(
                f"{name:<34}{r['faith']:7.3f}{r['colour']:8.3f}{r['shape']:7.3f}"
                f"{r['motion']:8.3f}{r['fd']:8.2f}"
            )


if __name__ == "__main__":
    main()
