"""Noise schedules of ablation (b): zero terminal SNR vs the standard LDM schedule (docs/method.md).

- `zero_snr`: scaled-linear betas rescaled so `alphas_cumprod[-1] == 0`, v-prediction (an
  epsilon step at t=999 is non-finite under zero SNR), trailing timesteps (sampling starts at
  999), guidance rescale φ (Lin et al. 2023).
- `standard`: scaled-linear betas 8.5e-4 → 1.2e-2, epsilon prediction, leading timesteps.
- `linear`: DDPM's linear betas 1e-4 → 2e-2, epsilon prediction, leading timesteps.
"""

from __future__ import annotations

from typing import Any

TRAIN_TIMESTEPS = 1000


def scheduler_kwargs(schedule: str) -> dict[str, Any]:
    if schedule == "zero_snr":
        return {
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "prediction_type": "v_prediction",
            "rescale_betas_zero_snr": True,
            "timestep_spacing": "trailing",
        }
    if schedule == "standard":
        return {
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "prediction_type": "epsilon",
            "rescale_betas_zero_snr": False,
            "timestep_spacing": "leading",
            "steps_offset": 1,
        }
    if schedule == "linear":
        return {
            "beta_start": 0.0001,
            "beta_end": 0.02,
            "beta_schedule": "linear",
            "prediction_type": "epsilon",
            "rescale_betas_zero_snr": False,
            "timestep_spacing": "leading",
            "steps_offset": 1,
        }
    raise ValueError(f"unknown schedule {schedule!r}")


def training_scheduler(schedule: str) -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(  # type: ignore[no-untyped-call]
        num_train_timesteps=TRAIN_TIMESTEPS, clip_sample=False, **scheduler_kwargs(schedule)
    )


def sampling_scheduler(schedule: str) -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(  # type: ignore[no-untyped-call]
        num_train_timesteps=TRAIN_TIMESTEPS,
        clip_sample=False,
        # Under zero SNR alphas_cumprod[0] of the "previous" step must be 1, not alphas[0].
        set_alpha_to_one=True,
        **scheduler_kwargs(schedule),
    )


def training_target(scheduler: Any, latents: Any, noise: Any, timesteps: Any) -> Any:
    """What the U-Net learns to predict: v for v-prediction, the noise for epsilon."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    return noise


def uses_guidance_rescale(schedule: str) -> bool:
    return schedule == "zero_snr"
