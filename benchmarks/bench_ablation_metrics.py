"""Automatic scores of each ablation pair (SPEC §3 Table 1) on held-out prompts, side by side.

For every shipped variant: ≥ 64 videos on the held-out attribute combinations (never seen in
training), judged by the procedural classifier: faithfulness (share of colour, shape and
motion right), each attribute's accuracy, and the Fréchet distance (FVD-style, classifier
features) to real videos of the same prompts. Real videos are scored too, as the ceiling.
Each row names its checkpoint's training steps. Last, the default variant's motion accuracy
against chance (one-sided binomial test), on the held-out prompts and on as many prompts of
attribute combinations seen in training.

    python benchmarks/bench_ablation_metrics.py [--seeds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench_ablation")
    parser.add_argument("--generate-only", action="store_true", help="Fill the cache, no scores.")
    args = parser.parse_args()

    import numpy as np
    import torch

    from generation.video import checkpoints, metrics
    from generation.video.config import ConfigError, VariantConfig
    from generation.video.data import held_out_prompts, reference_videos
    from generation.video.pipeline import load_generator

    torch.set_num_threads(args.threads)
    prompts = [p for p in held_out_prompts() for _ in range(args.seeds)]
    seeds = list(range(len(prompts)))
    real = reference_videos(prompts, seed=0).videos

    def generate(overrides: dict[str, object]) -> list[np.ndarray] | None:
        """Videos of a variant; kept under var/ so a rerun only rescores them."""
        key = "-".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "default"
        stored = args.cache / f"{key}-{len(prompts)}.npy"
        if stored.is_file():
            return list(np.load(stored))
        try:
            gen = load_generator(VariantConfig.from_dict(dict(overrides)), "cpu")
        except ConfigError as exc:
            print(f"  {key}: not available ({exc})")
            return None
        videos = []
        for i in range(0, len(prompts), args.batch):
            out = gen.generate(prompts[i : i + args.batch], seeds[i : i + args.batch])
            videos.extend(v.frames for v in out)
        stored.parent.mkdir(parents=True, exist_ok=True)
        np.save(stored, np.stack(videos))
        return videos

    if args.generate_only:
        for _, preferred, other in PAIRS:
            for overrides in (preferred, other):
                generate(overrides)
        return
    root = checkpoints.checkpoint_dir()
    classifier, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)

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

    def steps_of(overrides: dict[str, object]) -> str:
        try:
            config = VariantConfig.from_dict(dict(overrides))
            card = checkpoints.read_card(checkpoints.resolve_video_folder(config, root))
        except ConfigError:
            return "?"
        return str(card.get("steps_done", "?")) if card else "?"

    def run(overrides: dict[str, object]) -> dict[str, float] | None:
        key = "-".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "default"
        if key not in cache:
            videos = generate(overrides)
            if videos is None:
                return None
            cache[key] = summary(videos)
        return cache[key]

    print(
        f"{len(prompts)} videos per variant on {len(set(prompts))} held-out prompts; "
        f"classifier {version}"
    )
    header = (
        f"{'variant':<34}{'faith':>7}{'colour':>8}{'shape':>7}{'motion':>8}{'FD':>8}{'steps':>7}"
    )
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
            if r is None:
                continue
            name = label + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "default")
            print(
                f"{name:<34}{r['faith']:7.3f}{r['colour']:8.3f}{r['shape']:7.3f}"
                f"{r['motion']:8.3f}{r['fd']:8.2f}{steps_of(overrides):>7}"
            )

    # Motion of the default variant against chance (1/6), held-out and seen combinations.
    from scipy.stats import binomtest

    from generation.video.data import sample_attributes

    rng = np.random.default_rng(12345)
    seen = [sample_attributes(rng, "train").caption() for _ in range(len(prompts))]
    default = load_generator(VariantConfig.from_dict({}), "cpu")
    seen_videos = []
    for i in range(0, len(seen), args.batch):
        out = default.generate(seen[i : i + args.batch], seeds[i : i + args.batch])
        seen_videos.extend(v.frames for v in out)
    print("default variant, motion in the prompted direction (chance 1/6):")
    for label, videos, texts in (
        ("held-out combinations", generate({}), prompts),
        ("seen combinations", seen_videos, seen),
    ):
        assert videos is not None
        hits = sum(bool(s.motion_ok) for s in metrics.score_videos(classifier, videos, texts))
        test = binomtest(hits, len(texts), 1 / 6, alternative="greater")
        share = hits / len(texts)
        print(f"  {label:<24}{hits:>4}/{len(texts)} = {share:.3f}  p = {test.pvalue:.4f}")


if __name__ == "__main__":
    main()
