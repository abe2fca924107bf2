"""Where the default's flicker comes from, and what decoding takes off it (issue 18's aim:
frame-to-frame change at most 1.5× the real videos').

The default renders the first N held-out prompts (seed i for prompt i) at each text guidance
asked for; its latents are kept and decoded several ways:

- shipped (per frame): the shipped autoencoder's decoder, frame by frame (`temporal_decoding`
  off, the default);
- per-frame denoising decoder: a copy of that decoder fine-tuned here on latents with Gaussian
  noise added (up to --decoder-sigma, in units of the scaled latents), so a small change of a
  latent decodes to the same picture; still one frame at a time;
- shipped temporal decoder: `temporal_decoding` on (generation/video/temporal_decoding.py), the
  checkpoint train_variants wrote;
- temporal decoder σ≤S, trained here: the same model and loss, trained on the fly on the
  training videos' latents with noise up to each --sigma (the shipped checkpoints are not
  touched);
- + temporal filter τ: the per-frame and the shipped temporal decoder's frames through
  `temporal_filter` at each --tau (generation/video/temporal_filter.py: changes well under τ
  levels averaged away over neighbouring frames, larger ones kept).

With --interpolated, the interpolated videos too (8 → 29 frames at text guidance 7.5, through
the product's whole pipeline): the default with interpolation alone, and the showcase
(config.SHOWCASE: temporal decoding, the filter, interpolation) for factorized and direct,
against real 29-frame videos of the same prompts (issue 18's aim for interpolation: at most
2× their frame-to-frame change).

Per row: the frame-to-frame change (mean |frame t+1 − frame t| in levels of 255, 95% bootstrap
CI over prompts) and its ratio to the real videos'; that change split into the background
(pixels near the video's own background colour in both frames: any change there is flicker)
and the rest (the shape and its edges); the classifier's faithfulness and shape accuracy; and
for real videos sent through the same decoding, the same three changes (the floor of that
decoding) and their mean error from the real frames (what the decoding costs in detail).
Before the table, the change in the latents themselves in background cells, for real videos'
latents and the default's.

    python benchmarks/bench_temporal_decoding.py [--prompts 36] [--guidance 7.5 --guidance 3]
        [--sigma 0.6 --sigma 2] [--steps 2000] [--decoder-sigma 1.0] [--decoder-steps 1500]
        [--tau 8 --tau 16 --tau 32] [--interpolated]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ablation_metrics import fmt, mean_ci  # noqa: E402

TRAIN_VIDEOS = 3000  # the shipped plan's training set (generation/video/training.py)


BACKGROUND_NEAR = 40  # levels: a pixel this close to its video's background colour is background


def background(videos: np.ndarray) -> np.ndarray:
    """(N, T-1, H, W): pixels near their video's own background colour (its median colour) in
    both frames t and t+1. Each video's own: a generated shape is not where the real one is."""
    v = videos.astype(np.float32)
    colour = np.median(v.reshape(len(v), -1, v.shape[-1]), axis=1)[:, None, None, None, :]
    near = np.abs(v - colour).mean(axis=-1) < BACKGROUND_NEAR
    result: np.ndarray = near[:, 1:] & near[:, :-1]
    return result


def per_video_change(videos: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Per video, mean |frame t+1 − frame t| in levels of 255, over every pixel or over the
    (N, T-1, H, W) mask `where` only."""
    d = np.abs(np.diff(videos.astype(np.float32), axis=1)).mean(axis=-1)  # N, T-1, H, W
    if where is None:
        result: np.ndarray = d.mean(axis=(1, 2, 3))
        return result
    return np.array([d[i][where[i]].mean() if where[i].any() else np.nan for i in range(len(d))])


def _split(videos: np.ndarray) -> tuple[float, float]:
    """The change on the background and on the rest (the shape and its edges)."""
    bg = background(videos)
    return float(np.nanmean(per_video_change(videos, bg))), float(
        np.nanmean(per_video_change(videos, ~bg))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=36)
    parser.add_argument("--guidance", type=float, action="append", default=[])
    parser.add_argument(
        "--sigma", type=float, action="append", default=[], help="0 or none: train none here"
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--decoder-sigma", type=float, default=1.0)
    parser.add_argument("--decoder-steps", type=int, default=1500, help="0: leave that row out")
    parser.add_argument(
        "--tau", type=float, action="append", default=[], help="temporal filter τ; 0: none"
    )
    parser.add_argument("--interpolated", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    guidances = args.guidance or [7.5, 3.0]
    sigmas = [s for s in args.sigma if s > 0] if args.sigma else [0.6, 2.0]
    taus = [t for t in args.tau if t > 0] if args.tau else [8.0, 16.0, 32.0]

    import torch

    from generation.video import checkpoints, metrics, temporal_decoding
    from generation.video.config import ConfigError, VariantConfig
    from generation.video.data import held_out_prompts, make_video_set, reference_videos
    from generation.video.pipeline import decode_frames, load_generator

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    prompts = held_out_prompts()[: args.prompts]
    n = len(prompts)
    root = checkpoints.checkpoint_dir()
    classifier, version = metrics.load_classifier(root / checkpoints.CLASSIFIER)
    real = reference_videos(prompts, seed=0).videos
    real_change = per_video_change(real)

    rendered: dict[float, Any] = {}
    vae: Any = None
    for w in guidances:
        gen = load_generator(VariantConfig.from_dict({"guidance_text": w}), "cpu")
        vae = gen.vae
        parts = [
            gen.latents(prompts[i : i + 12], list(range(i, min(n, i + 12))))[0]
            for i in range(0, n, 12)
        ]
        rendered[w] = torch.cat(parts)
    assert vae is not None
    scaling = float(vae.config.scaling_factor)
    print(f"rendered {n} held-out prompts at guidance {guidances}, {_since(started)}")

    def encode(videos: np.ndarray) -> Any:
        """(N, T, H, W, 3) uint8 → (N, C, T, h, w) scaled latents (posterior means)."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(videos), 200):
                chunk = videos[i : i + 200]
                flat = chunk.reshape(-1, *chunk.shape[2:])
                x = torch.from_numpy(flat).float().div(127.5).sub(1.0).permute(0, 3, 1, 2)
                z = vae.encode(x).latent_dist.mean * scaling
                out.append(z.reshape(len(chunk), chunk.shape[1], *z.shape[1:]).transpose(1, 2))
        return torch.cat(out)

    training = make_video_set(TRAIN_VIDEOS, seed=0, size=real.shape[2], frames=real.shape[1])
    train_latents = encode(training.videos).clone()  # a normal tensor, to train on
    real_latents = encode(real)
    gen_cpu = torch.Generator().manual_seed(0)

    ways: list[tuple[str, Callable[[Any], np.ndarray]]] = [
        ("shipped (per frame)", lambda z: decode_frames(vae, z, scaling)),
    ]
    if args.decoder_steps:
        decoder = _train_decoder(vae, training.videos, args, gen_cpu)
        ways.append(
            (
                f"per-frame denoising decoder σ≤{args.decoder_sigma:g}",
                lambda z: decode_frames(decoder, z, scaling),
            )
        )
        print(f"per-frame decoder trained, {_since(started)}")

    def through(model: Any) -> Callable[[Any], np.ndarray]:
        def decode(z: Any) -> np.ndarray:
            with torch.inference_mode():
                return decode_frames(vae, model(z), scaling)

        return decode

    try:
        ways.append(("shipped temporal decoder", through(temporal_decoding.load(root))))
    except ConfigError as exc:
        print(f"no shipped temporal decoder: {exc}")
    bases = [way for way in ways if way[0] in ("shipped (per frame)", "shipped temporal decoder")]
    for tau in taus:
        for label, decode in bases:
            ways.append((f"{label} + filter τ={tau:g}", _filtered(decode, tau)))
    for sigma in sigmas:
        model = _train_denoiser(train_latents, sigma, args.steps, gen_cpu)
        ways.append((f"temporal decoder σ≤{sigma:g}, trained here", through(model)))
        print(f"temporal decoder σ≤{sigma:g} trained, {_since(started)}")

    print()
    real_bg, real_rest = _split(real)
    print(
        f"{n} held-out prompts, classifier {version}; real videos change by "
        f"{real_change.mean():.2f} per frame: {real_bg:.2f} on the background, {real_rest:.2f} "
        f"on the rest ({1 - background(real).mean():.0%} of the pixels)"
    )
    # The same in the latents: cells whose pixels are all background (in the video as the
    # autoencoder decodes it frame by frame).
    scale = real.shape[2] // real_latents.shape[-1]
    for label, z in [("real", real_latents)] + [
        (f"default, guidance {w:g}", rendered[w]) for w in guidances
    ]:
        with torch.inference_mode():
            bg = background(decode_frames(vae, z, scaling))
        cells = bg.reshape(*bg.shape[:2], bg.shape[2] // scale, scale, -1, scale).all(axis=(3, 5))
        d = (z[:, :, 1:] - z[:, :, :-1]).abs().mean(dim=1).numpy()  # N, T-1, h, w
        print(f"  latents of {label}: change per frame in background cells {d[cells].mean():.3f}")
    head = (
        f"{'decoding':<36}{'guid.':>6}{'change':>22}{'× real':>8}{'bg':>7}{'rest':>7}"
        f"{'faith':>7}{'shape':>7}{'real via: change':>18}{'bg':>7}{'rest':>7}{'error':>7}"
    )
    print(head)
    for label, decode in ways:
        with torch.inference_mode():
            through_real = decode(real_latents)
        floor = per_video_change(through_real).mean()
        floor_bg, floor_rest = _split(through_real)
        error = np.abs(through_real.astype(np.float32) - real.astype(np.float32)).mean()
        for w in guidances:
            with torch.inference_mode():
                videos = decode(rendered[w])
            change = per_video_change(videos)
            bg, rest = _split(videos)
            scores = metrics.score_videos(classifier, list(videos), prompts)
            faith = np.mean([s.faithfulness for s in scores])
            shape = np.mean([bool(s.shape_ok) for s in scores])
            print(
                f"{label:<36}{w:>6g}{fmt(mean_ci(change), 2):>22}"
                f"{change.mean() / real_change.mean():>8.2f}{bg:>7.2f}{rest:>7.2f}"
                f"{faith:>7.3f}{shape:>7.2f}{floor:>18.2f}{floor_bg:>7.2f}{floor_rest:>7.2f}"
                f"{error:>7.2f}"
            )
    if args.interpolated:
        interpolated(prompts, classifier)
    print(f"\ntotal {_since(started)}")


def interpolated(prompts: list[str], classifier: Any) -> None:
    """Frame-to-frame change of interpolated videos against real 29-frame videos."""
    from generation.video import metrics
    from generation.video.config import SHOWCASE, VariantConfig
    from generation.video.data import reference_videos
    from generation.video.pipeline import interpolation_layout, load_generator

    n = len(prompts)
    frames, _ = interpolation_layout(VariantConfig().frames)
    real_change = per_video_change(reference_videos(prompts, seed=0, frames=frames).videos)
    print(
        f"\ninterpolated to {frames} frames, guidance 7.5; real {frames}-frame videos change by "
        f"{real_change.mean():.2f} per frame"
    )
    print(f"{'variant':<44}{'change':>22}{'× real':>8}{'faith':>7}{'shape':>7}{'s/video':>9}")
    for label, config in (
        ("default, interpolation alone", {"interpolation": True}),
        ("default, the showcase", SHOWCASE),
        ("direct, the showcase", {**SHOWCASE, "mode": "direct"}),
    ):
        gen = load_generator(VariantConfig.from_dict(config), "cpu")
        started = time.perf_counter()
        batches = [(prompts[i : i + 12], list(range(i, min(n, i + 12)))) for i in range(0, n, 12)]
        videos = np.stack([v.frames for batch in batches for v in gen.generate(*batch)])
        seconds = (time.perf_counter() - started) / n
        change = per_video_change(videos)
        scores = metrics.score_videos(classifier, list(videos), prompts)
        print(
            f"{label:<44}{fmt(mean_ci(change), 2):>22}{change.mean() / real_change.mean():>8.2f}"
            f"{np.mean([s.faithfulness for s in scores]):>7.3f}"
            f"{np.mean([bool(s.shape_ok) for s in scores]):>7.2f}{seconds:>9.2f}"
        )


def _filtered(decode: Callable[[Any], np.ndarray], tau: float) -> Callable[[Any], np.ndarray]:
    from generation.video import temporal_filter

    return lambda z: temporal_filter.steady(decode(z), tau)


def _train_denoiser(latents: Any, sigma: float, steps: int, gen: Any) -> Any:
    """A temporal decoder as train_variants trains one (temporal_decoding.py), with noise up
    to `sigma`, on these latents."""
    import torch

    from generation.video import temporal_decoding

    model = temporal_decoding.build(latents.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    for _ in range(steps):
        batch = latents[torch.randint(len(latents), (32,), generator=gen)]
        loss = temporal_decoding.loss(model, batch, sigma, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def _train_decoder(vae: Any, videos: np.ndarray, args: argparse.Namespace, gen: Any) -> Any:
    """A copy of the shipped decoder fine-tuned to decode noised latents (noise up to
    --decoder-sigma in scaled units) to their clean frames."""
    import torch

    decoder = copy.deepcopy(vae).train()
    params = [p for n, p in decoder.named_parameters() if n.startswith(("decoder.", "post_quant"))]
    for p in decoder.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    frames = videos.reshape(-1, *videos.shape[2:])
    scaling = float(vae.config.scaling_factor)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    for _ in range(args.decoder_steps):
        idx = torch.randint(len(frames), (16,), generator=gen).numpy()
        x = torch.from_numpy(frames[idx]).float().div(127.5).sub(1.0).permute(0, 3, 1, 2)
        with torch.no_grad():
            z = decoder.encode(x).latent_dist.mean
            level = torch.rand(len(z), 1, 1, 1, generator=gen) * args.decoder_sigma / scaling
            z = z + level * torch.randn(z.shape, generator=gen)
        loss = torch.nn.functional.mse_loss(decoder.decode(z).sample, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return decoder.eval()


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.0f} s"


if __name__ == "__main__":
    main()
