"""Automatic scores of each ablation pair (docs/method.md) on held-out prompts, against seed noise.

Every variant renders the held-out prompts (attribute combinations never seen in training) with
the same seeds, so the two videos of a pair differ only by the variant. Two tables:

1. Per variant, judged by the procedural classifier: faithfulness (share of colour, shape and
   motion right), each attribute's accuracy, frame-to-frame change (mean |frame t+1 − frame t|
   in levels of 255) and the Fréchet distance to real videos of the same prompts. Real videos
   are scored too, as the ceiling, and after the autoencoder's round trip, the floor of any
   model working in its latents (its frame-to-frame change is already above the real videos').
2. Per pair, does the ablation separate? The pixel distance between the pair's videos of the
   same prompt and seed (mean |A − B| in levels), with a 95% bootstrap CI over prompts, next to
   the distance between two seeds of the same variant (the default, and each pair's own
   variants where `--noise-variants all`); and the pair's faithfulness difference with its CI,
   next to the same statistic between two seeds of the default. A pair separates when its CI of
   (pair distance − seed distance) lies above zero: raters comparing it would see more than
   seed noise.

    python benchmarks/bench_ablation_metrics.py [--seeds 1] [--prompts 36] [--threads 1]
        [--also guidance_text=3] [--interpolation 12 [--interpolation-only] [--strength S ...]]

With `--interpolation N` it also says whether the interpolator keeps the 8 frames it is given
and moves smoothly, on the default's frames and on real frames (see docs/interpolation.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_t2i_shape import autoencoded  # noqa: E402

PAIRS = (
    ("(a) factorized vs direct", {}, {"mode": "direct"}),
    ("(b) zero-SNR vs standard", {}, {"schedule": "standard"}),
    ("(b') zero-SNR vs linear", {}, {"schedule": "linear"}),
    ("(c) multi-stage vs single", {"multistage": True}, {}),
    ("(d) HQ fine-tuned vs not", {"hq_finetune": True}, {}),
    ("(e) frozen vs fine-tuned spatial", {}, {"spatial": "finetuned"}),
)
ROUNDS = 4000


def key_of(overrides: dict[str, object]) -> str:
    return "-".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "default"


def _value(text: str) -> object:
    """A JSON value (3, true) or else the text itself (standard)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def cache_name(overrides: dict[str, object], seed_set: int, n: int) -> str:
    """The videos' file under --cache: names the full config (defaults included) and the
    checkpoint's card, so a changed default or a retrained checkpoint is rendered afresh."""
    from generation.video import checkpoints, temporal_decoding
    from generation.video.config import VariantConfig

    config = VariantConfig.from_dict(dict(overrides))
    try:
        card = checkpoints.read_card(
            checkpoints.resolve_video_folder(config, checkpoints.checkpoint_dir())
        )
    except ValueError:
        card = {}
    named: list[object] = [config.to_dict(), card]
    if config.temporal_decoding:
        named.append(temporal_decoding.version(checkpoints.checkpoint_dir()))
    text = json.dumps(named, sort_keys=True).encode()
    return f"{key_of(overrides)}-{zlib.crc32(text):08x}-s{seed_set}-{n}.npy"


def mean_ci(per_prompt: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean over prompts with its 95% percentile-bootstrap interval (prompts resampled)."""
    from analysis.stats import bootstrap_sums, percentile_interval

    x = np.asarray(per_prompt, dtype=np.float64)[:, None]
    sums = bootstrap_sums(x, rounds=ROUNDS, seed=seed) / len(x)
    lo, hi = percentile_interval(sums)
    return float(x.mean()), float(lo[0]), float(hi[0])


def pixel_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per video, mean |a − b| in levels of 255; (N, T, H, W, 3) each."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=(1, 2, 3, 4))


def flicker(videos: np.ndarray) -> np.ndarray:
    """Per video, mean |frame t+1 − frame t| in levels of 255."""
    v = videos.astype(np.float32)
    return np.abs(np.diff(v, axis=1)).mean(axis=(1, 2, 3, 4))


def fmt(stat: tuple[float, float, float], digits: int = 1) -> str:
    m, lo, hi = stat
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="Seeds per prompt for every variant.")
    parser.add_argument("--prompts", type=int, default=0, help="First N held-out prompts (0: all).")
    parser.add_argument(
        "--noise-variants",
        choices=("default", "all"),
        default="default",
        help="Which variants also render a second seed set to measure seed noise.",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help='One more pair, default vs these overrides, e.g. "guidance_text=3" (repeatable).',
    )
    parser.add_argument(
        "--interpolation",
        type=int,
        default=0,
        metavar="N",
        help="Also measure the interpolator (8 → 29 frames) on the first N prompts.",
    )
    parser.add_argument(
        "--strength",
        type=float,
        action="append",
        default=[],
        help="With --interpolation: SDEdit strength(s) to measure instead of the card's.",
    )
    parser.add_argument(
        "--interpolation-only",
        action="store_true",
        help="Render only the default (for the interpolator's given frames) and skip the tables.",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench_ablation")
    args = parser.parse_args()

    import torch

    from generation.video import checkpoints, metrics
    from generation.video.config import ConfigError, VariantConfig
    from generation.video.data import held_out_prompts, reference_videos
    from generation.video.pipeline import load_generator

    torch.set_num_threads(args.threads)
    pairs = list(PAIRS)
    for spec in args.also:
        try:
            items = (item.split("=", 1) for item in spec.split(","))
            overrides = {k: _value(v) for k, v in items}
        except ValueError:
            parser.error(f"--also {spec!r}: write KEY=VALUE pairs.")
        pairs.append((f"default vs {spec}", {}, overrides))
    prompts = held_out_prompts()
    if args.prompts:
        prompts = prompts[: args.prompts]
    n = len(prompts)
    root = checkpoints.checkpoint_dir()

    def render(overrides: dict[str, object], seed_set: int) -> np.ndarray | None:
        """(n, T, H, W, 3) videos of a variant, prompt i with seed 1000·seed_set + i; cached
        under var/ so a rerun only rescores them."""
        stored = args.cache / cache_name(overrides, seed_set, n)
        if stored.is_file():
            return np.load(stored)
        try:
            gen = load_generator(VariantConfig.from_dict(dict(overrides)), "cpu")
        except ConfigError as exc:
            print(f"  {key_of(overrides)}: not available ({exc})")
            return None
        seeds = [1000 * seed_set + i for i in range(n)]
        videos = []
        for i in range(0, n, args.batch):
            out = gen.generate(prompts[i : i + args.batch], seeds[i : i + args.batch])
            videos.extend(v.frames for v in out)
        result = np.stack(videos)
        stored.parent.mkdir(parents=True, exist_ok=True)
        np.save(stored, result)
        return result

    def steps_of(overrides: dict[str, object]) -> str:
        try:
            config = VariantConfig.from_dict(dict(overrides))
            card = checkpoints.read_card(checkpoints.resolve_video_folder(config, root))
        except ConfigError:
            return "?"
        return str(card.get("steps_done", "?")) if card else "?"

    if args.interpolation_only:
        if not args.interpolation:
            parser.error("--interpolation-only needs --interpolation N.")
        prompts = prompts[: args.interpolation]
        n = len(prompts)  # render() reads both: the default on these prompts only
        given = render({}, 0)
        assert given is not None
        measure_interpolation(args, prompts, given)
        return
    classifier, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)
    real = reference_videos(prompts, seed=0).videos
    variants: dict[str, dict[str, object]] = {}
    for _, preferred, other in pairs:
        variants.setdefault(key_of(preferred), preferred)
        variants.setdefault(key_of(other), other)
    sets: dict[str, list[np.ndarray]] = {}
    for key, overrides in variants.items():
        runs = [render(overrides, s) for s in range(args.seeds)]
        if all(r is not None for r in runs):
            sets[key] = [r for r in runs if r is not None]
    noise_keys = list(sets) if args.noise_variants == "all" else ["default"]
    for key in noise_keys:
        if key in sets and len(sets[key]) < 2:
            extra = render(variants[key], 1)
            assert extra is not None
            sets[key].append(extra)

    faith: dict[str, list[np.ndarray]] = {}
    for key, runs in sets.items():
        faith[key] = [
            np.array([s.faithfulness for s in metrics.score_videos(classifier, list(r), prompts)])
            for r in runs
        ]

    # 1. Per variant.
    print(f"{n} held-out prompts × {args.seeds} seed(s) per variant; classifier {version}")
    print(
        f"{'variant':<28}{'faith':>7}{'colour':>8}{'shape':>7}{'motion':>8}{'bg':>7}{'flicker':>9}"
        f"{'FD':>8}{'steps':>7}"
    )

    def row(label: str, videos: list[np.ndarray], steps: str) -> None:
        flat = [v for r in videos for v in r]
        scores = metrics.score_videos(classifier, flat, list(prompts) * len(videos))
        print(
            f"{label:<28}{np.mean([s.faithfulness for s in scores]):7.3f}"
            f"{np.mean([s.color_ok for s in scores]):8.3f}"
            f"{np.mean([s.shape_ok for s in scores]):7.3f}"
            f"{np.mean([s.motion_ok for s in scores]):8.3f}"
            f"{np.mean([s.background_ok for s in scores]):7.3f}"
            f"{np.mean([flicker(r).mean() for r in videos]):9.1f}"
            f"{metrics.frechet_distance(classifier, flat, real):8.2f}{steps:>7}"
        )

    row("real videos (ceiling)", [real], "")
    # The floor of any model working in the shipped autoencoder's latents: real videos through it.
    row("real via the autoencoder", [autoencoded(real)], "")
    for key, runs in sets.items():
        row(key, runs[: args.seeds], steps_of(variants[key]))
    print("chance: colour 0.167, shape 0.333, motion 0.167; bg = background colour right")

    # 2. Per pair against seed noise.
    def seed_noise(key: str) -> np.ndarray | None:
        runs = sets.get(key, [])
        return pixel_distance(runs[0], runs[1]) if len(runs) >= 2 else None

    default_noise = seed_noise("default")
    assert default_noise is not None
    print()
    print(
        "pixel distance, levels of 255 (mean [95% CI over prompts]); "
        "seed = two seeds of one variant"
    )
    print(
        f"{'pair':<34}{'pair distance':>20}{'seed (default)':>20}{'pair − seed':>20}"
        f"{'separates':>11}"
    )
    print(
        f"{'  seed noise of the default':<34}{'':>20}{fmt(mean_ci(default_noise)):>20}"
        f"{'':>20}{'':>11}"
    )
    for title, preferred, other in pairs:
        a, b = key_of(preferred), key_of(other)
        if a not in sets or b not in sets:
            print(f"{title:<34}{'not available':>20}")
            continue
        pair = np.mean(
            [
                pixel_distance(x, y)
                for x, y in zip(sets[a][: args.seeds], sets[b][: args.seeds], strict=True)
            ],
            axis=0,
        )
        noises = [x for x in (seed_noise(a), seed_noise(b)) if x is not None]
        noise = np.mean(noises, axis=0) if noises else default_noise
        excess = mean_ci(pair - noise)
        print(
            f"{title:<34}{fmt(mean_ci(pair)):>20}{fmt(mean_ci(noise)):>20}{fmt(excess):>20}"
            f"{'yes' if excess[1] > 0 else 'no':>11}"
        )

    print()
    print("faithfulness difference, preferred − against (mean [95% CI over prompts])")
    fa = faith["default"]
    print(f"{'  default seed 0 − seed 1':<34}{fmt(mean_ci(fa[0] - fa[1]), 3):>26}")
    for title, preferred, other in pairs:
        a, b = key_of(preferred), key_of(other)
        if a not in faith or b not in faith:
            continue
        diff = np.mean(
            [x - y for x, y in zip(faith[a][: args.seeds], faith[b][: args.seeds], strict=True)],
            axis=0,
        )
        stat = mean_ci(diff)
        verdict = "separates" if stat[1] > 0 or stat[2] < 0 else "within noise"
        print(f"{title:<34}{fmt(stat, 3):>26}  {verdict}")

    if args.interpolation:
        measure_interpolation(args, prompts[: args.interpolation], sets["default"][0])


def measure_interpolation(args: argparse.Namespace, prompts: list[str], given: np.ndarray) -> None:
    """Does the interpolator keep the 8 frames it is given, and does it move smoothly?

    Two inputs: the default's own 8 frames (the whole pipeline; seed set 0, so the interpolation
    variant draws the very frames `given` holds), and every 4th frame of the real 29-frame video
    (the interpolator alone: its motion set against the real in-between frames). Each
    `--strength` overrides the card's SDEdit strength, to compare them side by side.
    """
    from generation.video import checkpoints
    from generation.video.config import VariantConfig
    from generation.video.data import reference_videos
    from generation.video.pipeline import interpolation_layout, load_generator

    n = len(prompts)
    interpolator = (
        checkpoints.checkpoint_dir() / checkpoints.INTERPOLATION
    )  # its card keys the cache
    seeds = list(range(n))  # seed set 0: the same 8 frames as the default's videos
    gen = load_generator(VariantConfig.from_dict({"interpolation": True}), "cpu")
    frames, positions = interpolation_layout(given.shape[1])
    real = reference_videos(prompts, seed=0, frames=frames).videos
    real_given = real[:, positions]
    real_move = flicker(real)
    given_move = flicker(given[:n])
    # The floor of any interpolator that decodes its frames with the shipped autoencoder: the
    # real videos' own frames through it and back.
    floor_move = flicker(autoencoded(real))
    print()
    print(f"interpolation, {n} held-out prompts, 8 → {frames} frames (levels of 255)")
    print(
        f"  real {frames}-frame videos change {fmt(mean_ci(real_move))} frame to frame; the "
        f"default's 8 frames {fmt(mean_ci(given_move))} (real 8: "
        f"{fmt(mean_ci(flicker(real_given)))})"
    )
    print(
        f"  real {frames}-frame videos through the autoencoder (the floor of any interpolator "
        f"in its latents) change {fmt(mean_ci(floor_move))}: "
        f"{floor_move.mean() / real_move.mean():.1f}× the real videos'"
    )
    print(
        f"  {'input':<10}{'strength':>9}{'given frames kept |out[4k] − in k|':>36}"
        f"{'frame-to-frame change':>24}{'ratio to real':>15}{'least possible':>16}"
    )
    card_strength = float(gen.interp_strength)  # type: ignore[attr-defined]
    for strength in args.strength or [card_strength]:
        gen.interp_strength = strength  # type: ignore[attr-defined]
        for label, source in (("default", None), ("real", real_given)):
            card = json.dumps(checkpoints.read_card(interpolator), sort_keys=True).encode()
            key = f"interp-{label}-{strength:g}-{zlib.crc32(card):08x}"
            stored = args.cache / f"{cache_name({'interpolation': True}, 0, n)[:-4]}-{key}.npy"
            if stored.is_file():
                videos = np.load(stored)
            else:
                out = []
                for i in range(0, n, args.batch):
                    chunk = slice(i, i + args.batch)
                    if source is None:
                        got = gen.generate(prompts[chunk], seeds[chunk])
                        out.extend(v.frames for v in got)
                    else:
                        out.extend(gen.interpolate(source[chunk], prompts[chunk], seeds[chunk]))  # type: ignore[attr-defined]
                videos = np.stack(out)
                stored.parent.mkdir(parents=True, exist_ok=True)
                np.save(stored, videos)
            inputs = given[:n] if source is None else source
            kept = pixel_distance(videos[:, positions], inputs)
            move = flicker(videos)
            # Between two key frames 4 steps apart, the 4 steps' changes add up to at least the
            # key frames' difference (the triangle inequality, pixel by pixel): no interpolator
            # of these key frames changes less than a quarter of their change per step.
            least = flicker(videos[:, positions]) / (positions[1] - positions[0])
            mark = " (card)" if strength == card_strength else ""
            print(
                f"  {label:<10}{strength:>9g}{fmt(mean_ci(kept)):>36}{fmt(mean_ci(move)):>24}"
                f"{move.mean() / real_move.mean():>15.1f}{fmt(mean_ci(least)):>16}{mark}"
            )
    print(
        "  targets: given frames kept within 3, change at most 2× the real videos'. Real input:"
        " frames 4k are the autoencoder's round trip of the real frames (its own error). Least"
        " possible: a quarter of the change between the output's own key frames."
    )


if __name__ == "__main__":
    main()
