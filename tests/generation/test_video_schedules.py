"""Zero terminal SNR vs the standard and linear schedules (docs/method.md)."""

from __future__ import annotations

import pytest
import torch

from generation.video.schedules import (
    sampling_scheduler,
    training_scheduler,
    training_target,
    uses_guidance_rescale,
)


def test_zero_snr_reaches_pure_noise_and_predicts_v():
    sched = training_scheduler("zero_snr")
    assert sched.alphas_cumprod[-1].item() == 0.0
    assert sched.config.prediction_type == "v_prediction"
    assert uses_guidance_rescale("zero_snr")


@pytest.mark.parametrize("schedule", ["standard", "linear"])
def test_other_schedules_leave_signal_at_the_last_step(schedule):  # type: ignore[no-untyped-def]
    sched = training_scheduler(schedule)
    assert sched.alphas_cumprod[-1].item() > 0.0
    assert sched.config.prediction_type == "epsilon"
    assert not uses_guidance_rescale(schedule)


def test_sampling_starts_at_the_last_training_step_only_under_zero_snr():
    zero = sampling_scheduler("zero_snr")
    zero.set_timesteps(10)
    standard = sampling_scheduler("standard")
    standard.set_timesteps(10)
    assert int(zero.timesteps[0]) == 999
    assert int(standard.timesteps[0]) < 999


def test_training_target_follows_the_prediction_type():
    x0, noise = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    t = torch.tensor([999, 500])
    zero = training_scheduler("zero_snr")
    v = training_target(zero, x0, noise, t)
    # at t = 999 with zero SNR, v = −x0 (alpha = 0, sigma = 1)
    torch.testing.assert_close(v[0], -x0[0])
    assert torch.equal(training_target(training_scheduler("standard"), x0, noise, t), noise)
