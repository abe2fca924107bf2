"""Text-to-video generation behind one small interface the worker uses.

`load_generator(config)` returns an object whose `generate(prompts, seeds)` returns frames.
This first version samples a tiny, randomly initialised `UNet3DConditionModel` with a real DDIM
loop and decodes per frame with a tiny `AutoencoderKL` (SPEC §1: everything is per frame).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .config import VariantConfig

LATENT_CHANNELS = 4
TEXT_DIM = 32
MAX_TOKENS = 16


@dataclass(frozen=True)
class GeneratedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: int
    seconds: float


class RandomInitGenerator:
    """Tiny real diffusers models with fixed random weights (seed 0), identical in every process."""

    def __init__(self, config: VariantConfig, device: str) -> None:
        import torch
        from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel

        self.config = config
        self.device = torch.device(device)
        torch.manual_seed(0)
        self.vae = AutoencoderKL(
            block_out_channels=(8, 16),
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=LATENT_CHANNELS,
            norm_num_groups=4,
        ).eval()
        self.unet = UNet3DConditionModel(
            block_out_channels=(8, 16),
            layers_per_block=1,
            norm_num_groups=4,
            cross_attention_dim=TEXT_DIM,
            attention_head_dim=2,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        ).eval()
        self.token_embedding = torch.nn.Embedding(4096, TEXT_DIM)
        zero_snr = config.schedule == "zero_snr"
        self.scheduler = DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="linear" if config.schedule == "linear" else "scaled_linear",
            prediction_type="v_prediction" if zero_snr else "epsilon",
            rescale_betas_zero_snr=zero_snr,
            timestep_spacing="trailing" if zero_snr else "leading",
            clip_sample=False,
        )
        for module in (self.vae, self.unet, self.token_embedding):
            module.to(self.device)

    def _encode_prompts(self, prompts: Sequence[str]) -> Any:
        import torch

        ids = torch.zeros(len(prompts), MAX_TOKENS, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            words = prompt.lower().split()[:MAX_TOKENS]
            for col, word in enumerate(words):
                ids[row, col] = 1 + sum(word.encode()) * 31 % 4095
        return self.token_embedding(ids.to(self.device))

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[GeneratedVideo]:
        import torch

        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds must have the same length.")
        cfg = self.config
        started = time.perf_counter()
        latent_h, latent_w = cfg.height // 2, cfg.width // 2
        with torch.inference_mode():
            # 1. Encode prompts.
            text = self._encode_prompts(prompts)
            # 2. Prepare latents, one generator per seed so each video is reproducible alone.
            latents = torch.stack(
                [
                    torch.randn(
                        (LATENT_CHANNELS, cfg.frames, latent_h, latent_w),
                        generator=torch.Generator("cpu").manual_seed(seed),
                    )
                    for seed in seeds
                ]
            ).to(self.device)
            # 3. Denoise.
            self.scheduler.set_timesteps(cfg.steps, device=self.device)
            for t in self.scheduler.timesteps:
                model_out = self.unet(latents, t, encoder_hidden_states=text).sample
                latents = self.scheduler.step(model_out, t, latents).prev_sample
            # 4. Decode frame by frame.
            b, c, f, h, w = latents.shape
            flat = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
            images = self.vae.decode(flat).sample.clamp(-1, 1)
            images = ((images + 1) * 127.5).round().to(torch.uint8)
            images = images.reshape(b, f, 3, cfg.height, cfg.width).permute(0, 1, 3, 4, 2)
        per_video = (time.perf_counter() - started) / len(prompts)
        return [
            GeneratedVideo(frames=video.cpu().numpy(), fps=cfg.fps, seconds=per_video)
            for video in images
        ]


@lru_cache(maxsize=2)
def load_generator(config: VariantConfig, device: str = "cpu") -> RandomInitGenerator:
    """Build (once per process, cached per config) the generator for a variant."""
    return RandomInitGenerator(config, device)
