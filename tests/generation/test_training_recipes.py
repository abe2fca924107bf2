"""One tiny training run per ablation recipe, each asserting the property that defines it.

Every run goes through the project's own `Trainer.video` stage and its loss; the loss function
is wrapped only to record what each step was given.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

import pytest
import torch

from generation.video import checkpoints, training
from generation.video.models import is_temporal
from generation.video.schedules import training_scheduler
from generation.video.training import HQ_MIN_SPEED, Trainer, VideoRecipe, tiny_plan

C = 4  # latent channels of the tiny size
STEPS = 5


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    plan = replace(tiny_plan(), video_steps=STEPS, hq_steps=STEPS, low_res_fraction=0.6)
    return Trainer(
        plan,
        out_dir=tmp_path_factory.mktemp("recipes"),
        state_dir=tmp_path_factory.mktemp("recipes-state"),
        progress=False,
        log=lambda _: None,
    )


@pytest.fixture(scope="module")
def vae(trainer: Trainer) -> Any:
    return trainer.autoencoder()


class Steps:
    """What `_diffusion_loss` was given at each training step."""

    def __init__(self) -> None:
        self.x0: list[torch.Tensor] = []
        self.extra: list[torch.Tensor | None] = []
        self.schedulers: list[Any] = []
        self.target_is_noise: list[bool] = []


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    record = Steps()
    real_loss, real_target = training._diffusion_loss, training.training_target

    def loss(unet, sched, x0, text, gen, extra):  # type: ignore[no-untyped-def]
        record.schedulers.append(sched)
        if x0.ndim == 5:  # a video step (a T2I stage trained on the way passes single frames)
            record.x0.append(x0.detach().clone())
            record.extra.append(None if extra is None else extra.detach().clone())
        return real_loss(unet, sched, x0, text, gen, extra)

    def target(scheduler, latents, noise, timesteps):  # type: ignore[no-untyped-def]
        out = real_target(scheduler, latents, noise, timesteps)
        record.target_is_noise.append(out is noise)
        return out

    monkeypatch.setattr(training, "_diffusion_loss", loss)
    monkeypatch.setattr(training, "training_target", target)
    return record


def _train(trainer: Trainer, vae: Any, recipe: VideoRecipe, base: Any = None) -> Any:
    """A fresh run of the recipe's stage (the module's T2I models are trained once)."""
    shutil.rmtree(trainer.out_dir / recipe.name, ignore_errors=True)
    return trainer.video(recipe, vae, trainer.t2i(recipe.schedule, vae), base=base)


def _t2i_weights(trainer: Trainer, schedule: str) -> dict[str, torch.Tensor]:
    from diffusers import UNet2DConditionModel

    folder = trainer.out_dir / checkpoints.t2i_checkpoint_name(schedule) / "unet"
    return dict(checkpoints.load_model(UNet2DConditionModel, folder).state_dict())


def test_multistage_switches_resolution_at_its_step(trainer, vae, steps):  # type: ignore[no-untyped-def]
    # given a multi-stage recipe with 60% of 5 steps at half resolution
    _train(trainer, vae, VideoRecipe(multistage=True))
    # then steps 0-2 saw half-size latents (16 px → 8 px → 4×4) and steps 3-4 the full size
    sizes = [tuple(x.shape[-2:]) for x in steps.x0]
    assert sizes == [(4, 4)] * 3 + [(8, 8)] * 2
    card = checkpoints.read_card(trainer.out_dir / "video-factorized-zero_snr-frozen-multistage")
    assert [s["steps"] for s in card["stages"]] == [3, 2]
    assert [s["size"] for s in card["stages"]] == [8, 16]


def test_single_stage_trains_at_full_resolution_only(trainer, vae, steps):  # type: ignore[no-untyped-def]
    _train(trainer, vae, VideoRecipe())
    assert {tuple(x.shape[-2:]) for x in steps.x0} == {(8, 8)}


def test_hq_finetune_trains_only_on_its_high_motion_subset(trainer, vae, steps):  # type: ignore[no-untyped-def]
    # given the default video model as the parent
    base = _train(trainer, vae, VideoRecipe())
    steps.x0.clear()
    main = trainer.latents("main", vae).permute(0, 2, 1, 3, 4)  # (N, C, T, h, w)
    speed = trainer.video_set("main").speed
    subset = {i for i in range(len(speed)) if speed[i] >= HQ_MIN_SPEED}
    assert subset and len(subset) < len(speed)  # the test means something only if both exist
    # when the HQ fine-tune runs
    _train(trainer, vae, VideoRecipe(hq_finetune=True), base=base)
    # then every training video it saw is in the subset
    seen = set()
    for batch in steps.x0:
        for video in batch:
            matches = [i for i in range(len(main)) if torch.equal(main[i], video)]
            assert len(matches) == 1
            seen.add(matches[0])
    assert seen and seen <= subset
    card = checkpoints.read_card(trainer.out_dir / "video-factorized-zero_snr-frozen-hq")
    assert card["hq_videos"] == len(subset)


def test_direct_has_no_image_conditioning(trainer, vae, steps):  # type: ignore[no-untyped-def]
    unet = _train(trainer, vae, VideoRecipe(mode="direct"))
    # every step's image latents and mask are zero
    assert steps.extra and all(e is not None and not e.any() for e in steps.extra)
    # so the image/mask input channels never learned anything
    assert not unet.conv_in.weight[:, C:].any()


def test_factorized_is_conditioned_on_its_first_frame(trainer, vae, steps):  # type: ignore[no-untyped-def]
    unet = _train(trainer, vae, VideoRecipe())
    extra = torch.cat([e for e in steps.extra if e is not None])
    cond, mask = extra[:, :C], extra[:, C:]
    x0 = torch.cat(steps.x0)
    kept = mask[:, 0, 0].flatten(1).all(dim=1)  # rows whose image was not dropped
    assert kept.any()
    assert torch.equal(cond[kept, :, 0], x0[kept, :, 0])
    assert not cond[:, :, 1:].any() and not mask[:, :, 1:].any()
    assert unet.conv_in.weight[:, C:].any()


def test_finetuned_changes_the_spatial_weights(trainer, vae, steps):  # type: ignore[no-untyped-def]
    unet = _train(trainer, vae, VideoRecipe(spatial="finetuned"))
    t2i = _t2i_weights(trainer, "zero_snr")
    video = unet.state_dict()
    spatial = [n for n in t2i if n != "conv_in.weight" and "norm" not in n]
    changed = [n for n in spatial if not torch.equal(video[n], t2i[n])]
    assert len(changed) >= 0.9 * len(spatial)
    assert not torch.equal(video["conv_in.weight"][:, :C], t2i["conv_in.weight"])


def test_frozen_leaves_every_spatial_tensor_bit_identical(trainer, vae, steps):  # type: ignore[no-untyped-def]
    unet = _train(trainer, vae, VideoRecipe())
    t2i = _t2i_weights(trainer, "zero_snr")
    video = unet.state_dict()
    # every T2I tensor, conv_in.bias included (frozen: it is shared with the T2I's channels)
    for name, value in t2i.items():
        got = video[name][:, :C] if name == "conv_in.weight" else video[name]
        assert torch.equal(got, value), name
    # while the temporal layers and the new input channels learned
    assert unet.conv_in.weight[:, C:].any()
    temporal = [n for n in video if is_temporal(n) and n.endswith("proj_out.weight")]
    assert temporal and any(video[n].any() for n in temporal)
    card = checkpoints.read_card(trainer.out_dir / "video-factorized-zero_snr-frozen")
    assert card["recipe"]["conv_in_bias"] == "frozen"


@pytest.mark.parametrize(
    ("schedule", "betas"),
    [
        ("standard", torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2),
        ("linear", torch.linspace(0.0001, 0.02, 1000, dtype=torch.float32)),
    ],
)
def test_baseline_schedules_train_epsilon_prediction_on_their_betas(  # type: ignore[no-untyped-def]
    trainer, vae, steps, schedule, betas
):
    _train(trainer, vae, VideoRecipe(schedule=schedule))
    assert steps.schedulers and all(s.config.prediction_type == "epsilon" for s in steps.schedulers)
    torch.testing.assert_close(steps.schedulers[-1].betas, betas)
    # standard LDM schedules keep signal at the last step (SNR(T) > 0), unlike zero-SNR
    assert float(steps.schedulers[-1].alphas_cumprod[-1]) > 0
    # the U-Net learned to predict the noise, at every step (the T2I's and the video model's)
    assert steps.target_is_noise and all(steps.target_is_noise)


def test_zero_snr_trains_v_prediction_to_pure_noise(trainer, vae, steps):  # type: ignore[no-untyped-def]
    _train(trainer, vae, VideoRecipe())
    sched = steps.schedulers[-1]
    assert sched.config.prediction_type == "v_prediction"
    assert float(sched.alphas_cumprod[-1]) == 0.0
    assert steps.target_is_noise and not any(steps.target_is_noise)


def test_the_training_loop_reduces_the_diffusion_loss_on_a_fixed_batch(trainer, vae):  # type: ignore[no-untyped-def]
    # given the project's loop and loss on one fixed batch, noise and timesteps
    lat = trainer.latents("main", vae)
    assert lat.shape[1:] == (4, C, 8, 8)  # 4 frames of 16 px, two VAE levels
    x0 = lat[:4].permute(0, 2, 1, 3, 4)
    text, _ = trainer.text_table(trainer.video_set("main").captions[:4])
    torch.manual_seed(0)
    unet = training.inflate_t2i(training.build_t2i(trainer.plan.size)).train()
    params = training.set_trainable(unet, spatial="finetuned")
    sched = training_scheduler("zero_snr")
    extra = training._first_frame_condition(x0, True, torch.Generator().manual_seed(0))

    def step(i: int, gen: Any) -> Any:
        fixed = torch.Generator().manual_seed(0)  # the same noise and t at every step
        return training._diffusion_loss(unet, sched, x0, text, fixed, extra=extra)

    # when the loop runs ten steps
    losses, _ = trainer._loop("fixed-batch", {"unet": unet}, params, 1e-3, 10, step)
    # then the loss went down
    assert len(losses) == 10
    assert max(losses[-3:]) < losses[0]
