"""How well the text-to-image (T2I) model alone draws the prompt, judged by the shipped classifier.

In the factorized family the T2I model makes frame 0 and the video model carries it on, so the
shape of a video comes from the T2I's image. This scores that image on its own: each prompt
(held-out, or with `--split seen` combinations seen in training) is sampled exactly as the
default variant samples its first image (same seed, noise, scheduler, steps and text guidance),
decoded, and held still for 8 frames, which the video classifier (metrics.py) then judges. Real
frame 0, held still the same way, is the ceiling: what the classifier can read from one still
image (also after the autoencoder's round trip, the ceiling of any model working in its latents).

    python benchmarks/bench_t2i_shape.py [--prompts 36] [--guidance 7.5 --guidance 3]
        [--steps 10] [--t2i PATH ...] [--videos] [--seeds 4] [--split seen]

Each `--t2i` is a T2I checkpoint folder (one with `unet/`, or the `unet/` folder itself) or a
training state `.pt` (the resumable loop's, or a `{"unet": state_dict}` snapshot); the T2I
inside the default's shipped video checkpoint is always scored first, for comparison.
`--videos` also renders whole videos from each T2I's first image with the default's shipped
video model (seed set 0 is what bench_ablation_metrics renders), and scores them and their
frame 0 held still.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_t2i(source: Path, like: Any) -> Any:
    """A T2I U-Net from a checkpoint folder or a saved training state; `like` gives the
    architecture for a state."""
    import copy

    import torch
    from diffusers import UNet2DConditionModel

    from generation.video import checkpoints

    if source.suffix == ".pt":
        state = torch.load(source, map_location="cpu", weights_only=False)
        weights = state["modules"]["unet"] if "modules" in state else state["unet"]
        model = copy.deepcopy(like)
        model.load_state_dict(weights)
        return model.eval()
    folder = source / "unet" if (source / "unet" / "config.json").is_file() else source
    return checkpoints.load_model(UNet2DConditionModel, folder)


def still(frames: np.ndarray, length: int = 8) -> np.ndarray:
    """(N, H, W, 3) images → (N, length, H, W, 3) videos that do not move."""
    return np.repeat(frames[:, None], length, axis=1)


def first_images(gen: Any, t2i: Any, prompts: list[str], seeds: list[int]) -> np.ndarray:
    """(N, H, W, 3) uint8: the first image the default samples for each (prompt, seed), made by
    `t2i` (the same noise as `EmuVideoGenerator._generate` draws first from the seed)."""
    import torch

    from generation.video.pipeline import decode_frames

    gen.t2i = t2i
    c = gen.unet.config.out_channels
    h, w = gen.config.height // gen.latent_scale, gen.config.width // gen.latent_scale
    out = []
    with torch.inference_mode():
        for i in range(0, len(prompts), gen.micro_batch):
            chunk = slice(i, i + gen.micro_batch)
            noise = torch.stack(
                [
                    torch.randn((c, h, w), generator=torch.Generator("cpu").manual_seed(int(s)))
                    for s in seeds[chunk]
                ]
            )
            text, null = gen._encode(prompts[chunk])
            latents = gen._sample_image(noise, text, null)
            out.append(decode_frames(gen.vae, latents[:, :, None], gen.scaling)[:, 0])
    return np.concatenate(out)


def autoencoded(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 images (or videos) through the shipped autoencoder and back, frame
    by frame, in the same shape: what any model working in its latents can at best give."""
    import torch
    from diffusers import AutoencoderKL

    from generation.video import checkpoints
    from generation.video.pipeline import decode_frames

    vae = checkpoints.load_model(AutoencoderKL, checkpoints.checkpoint_dir() / "autoencoder")
    flat = images.reshape(-1, *images.shape[-3:])
    with torch.inference_mode():
        x = torch.from_numpy(flat).float().div(127.5).sub(1.0).permute(0, 3, 1, 2)
        latents = vae.encode(x).latent_dist.mode()
        return decode_frames(vae, latents[:, :, None], 1.0)[:, 0].reshape(images.shape)


def accuracy(classifier: Any, videos: np.ndarray, prompts: list[str]) -> dict[str, float]:
    from generation.video import metrics

    scores = metrics.score_videos(classifier, list(videos), prompts)
    return {
        "shape": float(np.mean([s.shape_ok for s in scores])),
        "colour": float(np.mean([s.color_ok for s in scores])),
        "bg": float(np.mean([s.background_ok for s in scores])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=0, help="First N prompts (0: all).")
    parser.add_argument(
        "--split",
        choices=("heldout", "seen"),
        default="heldout",
        help="Held-out prompts, or 36 prompts of combinations seen in training.",
    )
    parser.add_argument("--guidance", type=float, action="append", default=[])
    parser.add_argument(
        "--seeds", type=int, default=1, help="Seed sets per prompt (set s: seed 1000·s + i)."
    )
    parser.add_argument("--steps", type=int, default=0, help="Sampling steps (0: the default's).")
    parser.add_argument("--t2i", type=Path, action="append", default=[])
    parser.add_argument("--videos", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from generation.video import checkpoints, metrics
    from generation.video.config import VariantConfig
    from generation.video.data import held_out_prompts, make_video_set, reference_videos
    from generation.video.pipeline import EmuVideoGenerator

    torch.set_num_threads(args.threads)
    if args.split == "heldout":
        prompts = held_out_prompts()
    else:
        prompts = list(make_video_set(36, seed=0, varied_captions=False).captions)
    if args.prompts:
        prompts = prompts[: args.prompts]
    n = len(prompts)
    # Seed set s gives prompt i the seed 1000·s + i, as bench_ablation_metrics does.
    seeds = [1000 * s + i for s in range(args.seeds) for i in range(n)]
    prompts = prompts * args.seeds
    root = checkpoints.checkpoint_dir()
    classifier, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)
    real = np.concatenate([reference_videos(prompts[:n], seed=s).videos for s in range(args.seeds)])
    default = VariantConfig()
    guidances = args.guidance or [default.guidance_text]
    print(f"{n} {args.split} prompts × {args.seeds} seed set(s); classifier {version}")
    print(f"{'what':<44}{'guidance':>9}{'steps':>6}{'shape':>7}{'colour':>8}{'bg':>6}")

    def line(label: str, g: object, steps: object, acc: dict[str, float]) -> None:
        print(
            f"{label:<44}{g!s:>9}{steps!s:>6}{acc['shape']:7.3f}{acc['colour']:8.3f}"
            f"{acc['bg']:6.3f}",
            flush=True,
        )

    line(
        "real frame 0, held still (ceiling)",
        "",
        "",
        accuracy(classifier, still(real[:, 0]), prompts),
    )
    line(
        "real frame 0 via the autoencoder, held still",
        "",
        "",
        accuracy(classifier, still(autoencoded(real[:, 0])), prompts),
    )
    line("real videos", "", "", accuracy(classifier, real, prompts))
    for g in guidances:
        overrides: dict[str, object] = {"guidance_text": g}
        if args.steps:
            overrides["steps"] = args.steps
        config = VariantConfig.from_dict(overrides)
        gen = EmuVideoGenerator(config, "cpu")
        shipped = gen.t2i
        sources: list[tuple[str, Any]] = [("shipped T2I (inside the default)", shipped)]
        sources += [(f"T2I {p}", load_t2i(p, shipped)) for p in args.t2i]
        for label, model in sources:
            images = first_images(gen, model, prompts, seeds)
            line(label[-44:], g, config.steps, accuracy(classifier, still(images), prompts))
            if args.videos:
                gen.t2i = model
                videos = np.stack([v.frames for v in gen.generate(prompts, seeds)])
                line(
                    "  its videos (video model as shipped)",
                    g,
                    config.steps,
                    accuracy(classifier, videos, prompts),
                )
                line(
                    "  its videos' frame 0, held still",
                    g,
                    config.steps,
                    accuracy(classifier, still(videos[:, 0]), prompts),
                )
        gen.t2i = shipped
    print("chance: shape 0.333, colour 0.167")


if __name__ == "__main__":
    main()
