"""The `linear` baseline of the schedule ablation is shipped: it registers and renders."""

from __future__ import annotations

import numpy as np
import torch

from generation import services
from generation.video.config import VariantConfig
from generation.video.pipeline import EmuVideoGenerator


def test_a_linear_variant_registers_against_the_shipped_checkpoints():
    _, notes = services.checked_variant_config({"schedule": "linear"})
    assert notes == ("Loads the trained checkpoint video-factorized-linear-frozen.",)


def test_a_linear_variant_renders_with_epsilon_steps_on_linear_betas():
    gen = EmuVideoGenerator(VariantConfig(schedule="linear", steps=2))
    assert gen.card["config"]["schedule"] == "linear"
    assert gen.scheduler.config.prediction_type == "epsilon"
    torch.testing.assert_close(gen.scheduler.betas, torch.linspace(1e-4, 0.02, 1000))
    video = gen.generate(["a red circle moves left on a blue background"], [0])[0]
    assert video.frames.shape == (8, 32, 32, 3) and np.ptp(video.frames) > 0
