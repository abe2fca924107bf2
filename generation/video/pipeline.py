"""Text-to-video generation with the Emu Video family behind the small interface the worker uses.

`load_generator(config)` returns the generator of a variant of any kind (kept per process, least
recently used out): an `EmuVideoGenerator` for the built-in family, a `DiffusersGenerator`
(diffusers_pipeline.py) for a saved diffusers pipeline. `generate(prompts, seeds)` returns frames.
The built-in family's steps follow the paper's factorized generation:

- factorized: the T2I U-Net (the video U-Net without its temporal layers) makes the first
  image; the video U-Net makes the frames conditioned on text and that image (Eq. 1 guidance);
- direct: the video U-Net alone, image channels empty and mask zero;
- temporal decoding (optional): the frames' latents steadied together by a small 3D
  convolution (temporal_decoding.py) before the rest, so a still background stays still;
- temporal filter (optional, on the decoded frames, last): small frame-to-frame changes
  averaged away over neighbouring frames, large ones kept (temporal_filter.py);
- interpolation (optional): 8 frames → 29 (input frame k at output index 4k), temporal
  super-resolution with the given frames noise-augmented at t=100 as the U-Net's conditioning.
  The sampler keeps the given frames and starts the others from them (docs/interpolation.md):
  the in-between latents start as a linear blend of their two neighbouring given latents,
  forward-noised (with the same blend of their noise) to the interpolator card's
  `sampling.strength` (SDEdit: 1 starts from pure noise, 0 returns the blend unchanged), and
  are guided by the card's `sampling.guidance_text`; before every denoising step the given
  frames' latents are replaced by the given latents forward-noised to that step's timestep
  with fixed noise (RePaint), and after the last step by the given latents themselves. The
  model works on the autoencoder's latents and decoding is per frame, so frame 4k of the
  output decodes from exactly the latent that frame k of the 8-frame video decodes from.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import checkpoints, temporal_decoding, temporal_filter
from .config import AnyConfig, ConfigError, DiffusersConfig, ImportedConfig, VariantConfig
from .schedules import sampling_scheduler, training_scheduler, uses_guidance_rescale

INTERPOLATION_FACTOR = 4
INTERPOLATION_NOISE_T = 100
# What the U-Nets compute in. Half precision ("bfloat16", "float16") is for GPUs; the sampler's
# own arithmetic (noise, guidance, scheduler steps) and the VAE stay in float32 whatever it is.
PRECISIONS = ("float32", "bfloat16", "float16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    return precision


@dataclass(frozen=True)
class GeneratedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: int
    seconds: float


def interpolation_layout(frames: int, factor: int = INTERPOLATION_FACTOR) -> tuple[int, list[int]]:
    """Output length and the output index of each input frame: k → factor·k (8 → 29 frames).

    The paper's 8 → 37 also extrapolates 4 frames at each end (k → 4 + 4k); at this scale the
    model only fills the gaps between given frames.
    """
    return factor * (frames - 1) + 1, [factor * k for k in range(frames)]


def key_frame_blend(latents: Any, positions: Sequence[int], out_frames: int) -> Any:
    """(B, C, F, h, w) given latents → (B, C, out_frames, h, w): the given frames at their
    positions and each frame between two of them the linear blend of the two, by distance."""
    b, c, _, h, w = latents.shape
    out = latents.new_zeros(b, c, out_frames, h, w)
    for k, (left, right) in enumerate(zip(positions, positions[1:], strict=False)):
        for j in range(left, right + 1):
            weight = (j - left) / (right - left)
            out[:, :, j] = (1 - weight) * latents[:, :, k] + weight * latents[:, :, k + 1]
    return out


def key_frame_noise(noise: Any, positions: Sequence[int]) -> Any:
    """Noise for the interpolator's frames: the given frames keep their own, and each frame
    between two of them gets the blend of theirs, rescaled to unit variance. Noised with it, the
    blend of two given latents is the blend of the two noised given latents, so the start does
    not boil from one frame to the next."""
    own = noise[:, :, list(positions)]
    blended = key_frame_blend(own, positions, noise.shape[2])
    out = noise.clone()
    for left, right in zip(positions, positions[1:], strict=False):
        for j in range(left, right + 1):
            weight = (j - left) / (right - left)
            scale = ((1 - weight) ** 2 + weight**2) ** 0.5
            out[:, :, j] = blended[:, :, j] / scale
    return out


def sdedit_timesteps(timesteps: Any, strength: float) -> Any:
    """The last `round(strength · steps)` of a scheduler's timesteps (SDEdit: strength 1 is the
    whole schedule from pure noise, 0 none of it)."""
    count = min(len(timesteps), round(strength * len(timesteps)))
    return timesteps[len(timesteps) - count :]


@dataclass(frozen=True)
class KnownFrames:
    """Frames the sampler must keep (the interpolator's given frames), in latent space."""

    positions: list[int]
    latents: Any  # (B, C, len(positions), h, w), clean
    start: Any  # (B, C, out_frames, h, w): where sampling starts, before noising
    strength: float

    def put_back(
        self, latents: Any, scheduler: Any = None, noise: Any = None, t: Any = None
    ) -> Any:
        """The known frames written into `latents`: forward-noised to timestep `t` with their
        own fixed share of `noise` (before a step), or clean (with no scheduler: the end)."""
        out = latents.clone()
        if scheduler is None:
            out[:, :, self.positions] = self.latents
        else:
            own = noise[:, :, self.positions]
            out[:, :, self.positions] = scheduler.add_noise(self.latents, own, t.reshape(1))
        return out


def image_condition(image_latents: Any, frames: int) -> tuple[Any, Any]:
    """Zero-pad (B, C, h, w) image latents in time and build the frame-0 mask (docs/method.md)."""
    b, c, h, w = image_latents.shape
    padded = image_latents.new_zeros(b, c, frames, h, w)
    padded[:, :, 0] = image_latents
    mask = image_latents.new_zeros(b, 1, frames, h, w)
    mask[:, :, 0] = 1.0
    return padded, mask


def guided_velocity(
    uncond: Any, image: Any, full: Any, *, w_image: float, w_text: float, rescale: float
) -> Any:
    """Paper Eq. 1, X(∅) + w_i(X(I) − X(∅)) + w_p(X(I,p) − X(I)), with CFG rescale φ."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    guided = uncond + w_image * (image - uncond) + w_text * (full - image)
    if rescale > 0:
        guided = rescale_noise_cfg(guided, full, guidance_rescale=rescale)  # type: ignore[no-untyped-call]
    return guided


class EmuVideoGenerator:
    """Loaded models for one variant; `generate` is batched and reproducible per seed."""

    def __init__(
        self,
        config: VariantConfig,
        device: str = "cpu",
        *,
        precision: str = "float32",
        checkpoint_root: str | Path | None = None,
        text_encoder: Any = None,
    ) -> None:
        import torch
        from diffusers import DDIMScheduler, UNet3DConditionModel

        from .models import extract_t2i

        self.config = config
        self.device = device
        self.precision = check_precision(precision)
        self.dtype = getattr(torch, precision)
        root = checkpoints.checkpoint_dir(checkpoint_root)
        folder = checkpoints.resolve_video_folder(config, root)
        self.folder = folder
        self.card = checkpoints.read_card(folder)
        self.unet = checkpoints.load_video_unet(folder, root, device)
        self.vae = checkpoints.load_vae(folder, root, device)
        self.t2i = extract_t2i(self.unet).to(device).eval() if config.mode == "factorized" else None
        # A foreign folder's own scheduler says how its model was trained; shipped folders
        # were trained with the schedule their name (and the config) says.
        if (folder / "scheduler" / "scheduler_config.json").is_file():
            self.scheduler = DDIMScheduler.from_pretrained(  # type: ignore[no-untyped-call]
                str(folder), subfolder="scheduler"
            )
        else:
            self.scheduler = sampling_scheduler(config.schedule)
        self.interpolator = None
        self.interp_schedule = config.schedule
        self.interp_scheduler: Any = None
        self.interp_strength = 1.0
        self.interp_guidance_text: float | None = None  # None: the variant's own
        if config.interpolation:
            # The interpolator is sampled with the scheduler it was trained with, from its card
            # (checked again here: a config registered before a checkpoint changed).
            found = checkpoints.find_interpolator(config, folder, root)
            if found.compact:
                self.interpolator = checkpoints.load_video_unet(found.unet_folder, root, device)
            else:
                self.interpolator = checkpoints.load_model(
                    UNet3DConditionModel, found.unet_folder, device
                )
            self.interp_schedule = found.schedule
            self.interp_scheduler = sampling_scheduler(found.schedule)
            self.interp_strength = found.strength
            self.interp_guidance_text = found.guidance_text
        self.temporal_decoder = (
            temporal_decoding.load(root, device) if config.temporal_decoding else None
        )
        for model in (self.unet, self.t2i, self.interpolator):
            if model is not None:
                # torch's own cast: diffusers' ModelMixin.to warns about modules to keep in
                # float32, and these U-Nets have none.
                torch.nn.Module.to(model, dtype=self.dtype)
        self.text_encoder = text_encoder or _shared_text_encoder(device)
        self.scaling = float(self.vae.config.scaling_factor)
        self.latent_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # On CPU, 4 videos per U-Net call (12 with Eq. 1's three passes) ran fastest per video:
        # 0.096 s per call and video vs 0.143 alone and 0.21 at 16 (cache-bound), 1 thread.
        self.micro_batch = 4

    def _predict(self, model: Any, sample: Any, t: Any, text: Any) -> Any:
        """One U-Net call in the model's precision; the prediction comes back in float32."""
        out = model(sample.to(self.dtype), t, encoder_hidden_states=text.to(self.dtype)).sample
        return out.float()

    # 1. Text.
    def _encode(self, prompts: Sequence[str]) -> tuple[Any, Any]:
        text = self.text_encoder(list(prompts)).to(self.device)
        null = self.text_encoder([""]).to(self.device).expand_as(text)
        return text, null

    # 2. First image (factorized only): text-to-image with classifier-free guidance.
    def _sample_image(self, noise: Any, text: Any, null: Any) -> Any:
        import torch

        assert self.t2i is not None
        cfg = self.config
        latents = noise * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(cfg.steps, device=self.device)
        rescale = cfg.guidance_rescale if uses_guidance_rescale(cfg.schedule) else 0.0
        for t in self.scheduler.timesteps:
            both = self._predict(
                self.t2i, torch.cat([latents, latents]), t, torch.cat([null, text])
            )
            uncond, full = both.chunk(2)
            guided = guided_velocity(
                uncond, uncond, full, w_image=0.0, w_text=cfg.guidance_text, rescale=rescale
            )
            latents = self.scheduler.step(guided, t, latents).prev_sample
        return latents

    # 3. Frames from text (+ first image): Eq. 1 with three passes batched together.
    def _sample_video(
        self,
        unet: Any,
        noise: Any,
        text: Any,
        null: Any,
        cond: Any,
        mask: Any,
        w_image: float,
        *,
        scheduler: Any = None,
        schedule: str | None = None,
        known: KnownFrames | None = None,
        w_text: float | None = None,
    ) -> Any:
        """`scheduler`/`schedule` default to the variant's own (the interpolator passes its).

        With `known` (the interpolator), sampling starts from its blend at its strength and
        its frames are put back before every step and after the last one.
        """
        import torch

        cfg = self.config
        scheduler = scheduler or self.scheduler
        schedule = schedule or cfg.schedule
        rescale = cfg.guidance_rescale if uses_guidance_rescale(schedule) else 0.0
        w_text = cfg.guidance_text if w_text is None else w_text
        scheduler.set_timesteps(cfg.steps, device=self.device)
        timesteps = scheduler.timesteps
        if known is None:
            latents = noise * scheduler.init_noise_sigma
        else:
            timesteps = sdedit_timesteps(timesteps, known.strength)
            latents = known.start
            if len(timesteps):
                latents = scheduler.add_noise(known.start, noise, timesteps[:1])
        has_image = bool(mask.abs().sum() > 0)
        for t in timesteps:
            if known is not None:
                latents = known.put_back(latents, scheduler, noise, t)
            if has_image:
                x = torch.cat([latents] * 3)
                c = torch.cat([torch.zeros_like(cond), cond, cond])
                m = torch.cat([torch.zeros_like(mask), mask, mask])
                e = torch.cat([null, null, text])
                out = self._predict(unet, torch.cat([x, c, m], dim=1), t, e)
                uncond, image, full = out.chunk(3)
            else:
                # No image: Eq. 1's image term vanishes, X(∅) + w_p(X(p) − X(∅)).
                x = torch.cat([latents] * 2)
                inputs = torch.cat([x, torch.cat([cond] * 2), torch.cat([mask] * 2)], dim=1)
                out = self._predict(unet, inputs, t, torch.cat([null, text]))
                uncond, full = out.chunk(2)
                image = uncond
            guided = guided_velocity(
                uncond, image, full, w_image=w_image, w_text=w_text, rescale=rescale
            )
            latents = scheduler.step(guided, t, latents).prev_sample
        if known is not None:
            latents = known.put_back(latents)
        return latents

    # 4. Temporal super-resolution: given frames at 4k, zero frames between, mask m'.
    def _interpolate(self, latents: Any, noise: Any, aug_noise: Any, text: Any, null: Any) -> Any:
        import torch

        b, c, f, h, w = latents.shape
        out_frames, positions = interpolation_layout(f)
        # Noise augmentation as in the interpolator's training (its own schedule).
        augment = training_scheduler(self.interp_schedule)
        t_aug = torch.full((b,), INTERPOLATION_NOISE_T, dtype=torch.long, device=self.device)
        noisy = augment.add_noise(latents, aug_noise, t_aug)
        cond = latents.new_zeros(b, c, out_frames, h, w)
        mask = latents.new_zeros(b, 1, out_frames, h, w)
        cond[:, :, positions] = noisy
        mask[:, :, positions] = 1.0
        assert self.interpolator is not None
        known = KnownFrames(
            positions=positions,
            latents=latents,
            start=key_frame_blend(latents, positions, out_frames),
            strength=self.interp_strength,
        )
        return self._sample_video(
            self.interpolator,
            key_frame_noise(noise, positions),
            text,
            null,
            cond,
            mask,
            w_image=1.0,
            scheduler=self.interp_scheduler,
            schedule=self.interp_schedule,
            known=known,
            w_text=self.interp_guidance_text,
        )

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[GeneratedVideo]:
        """One video per (prompt, seed), sampled in micro-batches of `micro_batch` videos."""
        # 1. Check inputs.
        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds must have the same length.")
        if not prompts:
            return []
        started = time.perf_counter()
        frames: list[np.ndarray] = []
        fps = self.config.fps
        step = self.micro_batch if self.device == "cpu" else len(prompts)
        for i in range(0, len(prompts), step):
            chunk, fps = self._generate(prompts[i : i + step], seeds[i : i + step])
            frames.extend(chunk)
        per_video = (time.perf_counter() - started) / len(prompts)
        return [GeneratedVideo(frames=video, fps=fps, seconds=per_video) for video in frames]

    def interpolate(
        self, frames: np.ndarray, prompts: Sequence[str], seeds: Sequence[int]
    ) -> np.ndarray:
        """(B, F, H, W, 3) uint8 given frames → (B, 4(F−1)+1, H, W, 3): the interpolation step
        alone, on frames from anywhere (the benchmark gives it real videos' frames). Each video's
        noise comes from its seed as in `generate`."""
        import torch

        if self.interpolator is None:
            raise ValueError("This variant has no interpolator (interpolation is off).")
        b, f = frames.shape[:2]
        c = self.unet.config.out_channels
        h, w = frames.shape[2] // self.latent_scale, frames.shape[3] // self.latent_scale
        out_frames, _ = interpolation_layout(f)
        with torch.inference_mode():
            text, null = self._encode(prompts)
            pixels = torch.from_numpy(frames).float().div(127.5).sub(1.0)
            pixels = pixels.reshape(b * f, *frames.shape[2:]).permute(0, 3, 1, 2).to(self.device)
            latents = self.vae.encode(pixels).latent_dist.mode() * self.scaling
            latents = latents.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)
            noise, aug = [], []
            for seed in seeds:
                gen = torch.Generator("cpu").manual_seed(int(seed))
                noise.append(torch.randn((c, out_frames, h, w), generator=gen))
                aug.append(torch.randn((c, f, h, w), generator=gen))
            out = self._interpolate(
                latents,
                torch.stack(noise).to(self.device),
                torch.stack(aug).to(self.device),
                text,
                null,
            )
            return decode_frames(self.vae, out, self.scaling)

    def _generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> tuple[np.ndarray, int]:
        import torch

        latents, fps = self.latents(prompts, seeds)
        # 7. Decode frame by frame, then the optional temporal filter on the frames.
        with torch.inference_mode():
            frames = decode_frames(self.vae, latents, self.scaling)
        return temporal_filter.steady(frames, self.config.temporal_filter), fps

    def latents(self, prompts: Sequence[str], seeds: Sequence[int]) -> tuple[Any, int]:
        """Steps 2-6 of `generate` for one batch: (B, C, T, h, w) scaled latents, not yet
        decoded, and their fps (benchmarks/bench_temporal_decoding.py decodes them its ways)."""
        import torch

        cfg = self.config
        c = self.unet.config.out_channels
        h, w = cfg.height // self.latent_scale, cfg.width // self.latent_scale
        out_frames, _ = interpolation_layout(cfg.frames)
        with torch.inference_mode():
            # 2. Encode prompts.
            text, null = self._encode(prompts)
            # 3. All noise of a video from its own seed, in a fixed order, so a video does not
            #    depend on what else is in the batch.
            image_noise, video_noise, interp_noise, aug_noise = [], [], [], []
            for seed in seeds:
                gen = torch.Generator("cpu").manual_seed(int(seed))
                image_noise.append(torch.randn((c, h, w), generator=gen))
                video_noise.append(torch.randn((c, cfg.frames, h, w), generator=gen))
                interp_noise.append(torch.randn((c, out_frames, h, w), generator=gen))
                aug_noise.append(torch.randn((c, cfg.frames, h, w), generator=gen))
            dev = self.device
            # 4. First image (factorized) and the conditioning channels.
            if cfg.mode == "factorized":
                image = self._sample_image(torch.stack(image_noise).to(dev), text, null)
                cond, mask = image_condition(image, cfg.frames)
            else:
                cond = torch.zeros(len(prompts), c, cfg.frames, h, w, device=dev)
                mask = torch.zeros(len(prompts), 1, cfg.frames, h, w, device=dev)
            # 5. Frames.
            latents = self._sample_video(
                self.unet,
                torch.stack(video_noise).to(dev),
                text,
                null,
                cond,
                mask,
                w_image=cfg.guidance_image,
            )
            # 5b. Optional temporal decoding: the frames' latents steadied together.
            if self.temporal_decoder is not None:
                latents = self.temporal_decoder(latents)
            fps = cfg.fps
            # 6. Optional temporal super-resolution.
            if self.interpolator is not None:
                latents = self._interpolate(
                    latents,
                    torch.stack(interp_noise).to(dev),
                    torch.stack(aug_noise).to(dev),
                    text,
                    null,
                )
                fps = cfg.fps * INTERPOLATION_FACTOR
            return latents, fps


def decode_frames(vae: Any, latents: Any, scaling: float) -> np.ndarray:
    """(B, C, T, h, w) latents → (B, T, H, W, 3) uint8, one frame at a time through the VAE."""
    import torch

    b, c, f, h, w = latents.shape
    flat = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w) / scaling
    images = vae.decode(flat).sample.clamp(-1, 1)
    images = ((images + 1) * 127.5).round().to(torch.uint8)
    images = images.reshape(b, f, 3, images.shape[-2], images.shape[-1]).permute(0, 1, 3, 4, 2)
    result: np.ndarray = images.cpu().numpy()
    return result


@lru_cache(maxsize=2)
def _shared_text_encoder(device: str) -> Any:
    from .text import TextEncoder

    return TextEncoder(device)


class Generator(Protocol):
    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[GeneratedVideo]: ...


# Loaded generators of this process, least recently used first.
_LOADED: OrderedDict[tuple[AnyConfig, str, str], Generator] = OrderedDict()


def max_loaded(device: str) -> int:
    """How many pipelines a process keeps loaded: one on a GPU (a second one may not fit beside
    it), two on the CPU; JUICE_MAX_LOADED_PIPELINES overrides both."""
    override = int(os.environ.get("JUICE_MAX_LOADED_PIPELINES", "0") or 0)
    return max(1, override) if override else (2 if device == "cpu" else 1)


def load_generator(config: AnyConfig, device: str = "cpu", precision: str = "float32") -> Generator:
    """A variant's generator, built once per process and kept while it is among the most
    recently used (`max_loaded`); the one pushed out is dropped before the next one loads.

    `precision` applies to the built-in family; a diffusers variant names its own `dtype`.
    """
    key = (config, device, precision)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    while _LOADED and len(_LOADED) >= max_loaded(device):
        _, evicted = _LOADED.popitem(last=False)
        release = getattr(evicted, "release", None)
        if release is not None:
            release()
        del evicted
        _free_accelerator(device)
    generator: Generator
    if isinstance(config, ImportedConfig):
        raise ConfigError("An imported variant has no model: its videos come from import_videos.")
    if isinstance(config, DiffusersConfig):
        from .diffusers_pipeline import DiffusersGenerator

        generator = DiffusersGenerator(config, device)
    else:
        generator = EmuVideoGenerator(config, device, precision=precision)
    _LOADED[key] = generator
    return generator


def clear_loaded() -> None:
    """Drop every loaded generator of this process (benchmarks compare cold loads)."""
    _LOADED.clear()


def _free_accelerator(device: str) -> None:
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()
