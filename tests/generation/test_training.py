"""Training on tiny configurations: cards, fp16 round trip, resume and determinism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from generation.video import checkpoints, temporal_decoding
from generation.video.models import TINY, build_t2i
from generation.video.training import Trainer, tiny_plan, train_variants


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    train_variants(
        seed=0,
        out_dir=out,
        state_dir=tmp_path_factory.mktemp("state"),
        plan=tiny_plan(),
        progress=False,
        log=lambda _: None,
    )
    return out


def test_full_tiny_run_writes_fp16_checkpoints_with_cards(trained):  # type: ignore[no-untyped-def]
    names = {p.name for p in trained.iterdir()}
    assert {"autoencoder", "t2i-zero_snr", "video-factorized-zero_snr-frozen"} <= names
    assert {"interpolation", "classifier", "temporal-decoder"} <= names
    steady = checkpoints.read_card(trained / "temporal-decoder")
    assert steady["steps_done"] == steady["recipe"]["steps"] == 2 and steady["final_loss"] > 0
    model = temporal_decoding.load(trained)
    assert model(torch.zeros(1, 4, 3, 4, 4)).shape == (1, 4, 3, 4, 4)
    # the interpolator's card says how it must be sampled, whatever variant uses it
    interp = checkpoints.read_card(trained / "interpolation")
    assert interp["scheduler"] == {"schedule": "zero_snr", "prediction_type": "v_prediction"}
    card = checkpoints.read_card(trained / "video-factorized-zero_snr-frozen")
    assert card["data_seed"] == 0 and card["steps_done"] == card["recipe"]["steps"] == 2
    assert card["wall_seconds"] >= 0 and card["final_loss"] > 0
    assert card["config"]["mode"] == "factorized" and card["config"]["spatial"] == "frozen"
    # frozen spatial: only the trained tensors are stored, in fp16
    unet_dir = trained / "video-factorized-zero_snr-frozen" / "unet"
    weights = load_file(str(unet_dir / checkpoints.TRAINED_FILE))
    assert weights and all(t.dtype == torch.float16 for t in weights.values())
    assert all("temp_" in k or k.startswith(("transformer_in.", "conv_in.")) for k in weights)
    assert not (unet_dir / "diffusion_pytorch_model.safetensors").exists()


def test_compact_checkpoint_loads_back_with_the_t2i_spatial_weights(trained):  # type: ignore[no-untyped-def]
    from diffusers import UNet2DConditionModel

    from generation.video.models import extract_t2i

    unet = checkpoints.load_video_unet(trained / "video-factorized-zero_snr-frozen", trained)
    t2i = checkpoints.load_model(UNet2DConditionModel, trained / "t2i-zero_snr" / "unet")
    back = extract_t2i(unet).state_dict()
    # every spatial tensor is the T2I's, conv_in's bias included (frozen, see set_trainable)
    assert all(torch.equal(back[k], v) for k, v in t2i.state_dict().items())
    stored = load_file(
        str(trained / "video-factorized-zero_snr-frozen" / "unet" / checkpoints.TRAINED_FILE)
    )
    assert all(torch.equal(unet.state_dict()[k], v.float()) for k, v in stored.items())


def test_finished_stages_are_skipped_on_rerun(trained, tmp_path):  # type: ignore[no-untyped-def]
    before = (trained / "t2i-zero_snr" / "card.json").read_text()
    logs: list[str] = []
    train_variants(
        seed=0,
        out_dir=trained,
        state_dir=tmp_path,
        plan=tiny_plan(),
        progress=False,
        log=logs.append,
    )
    assert (trained / "t2i-zero_snr" / "card.json").read_text() == before
    assert not any("steps, final loss" in line for line in logs)


def test_fp16_save_load_round_trip(tmp_path):  # type: ignore[no-untyped-def]
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    model = build_t2i(TINY)
    checkpoints.save_model(model, tmp_path / "unet")
    loaded = checkpoints.load_model(UNet2DConditionModel, tmp_path / "unet")
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value.half().float()), name
    # the original model was not cast
    assert next(model.parameters()).dtype == torch.float32


class _Interrupt(Exception):
    pass


def _t2i_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "t2i-zero_snr" / "unet" / "diffusion_pytorch_model.safetensors"))


def _kill_t2i_at_step_2(trainer: Trainer, vae, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Run the T2I stage until step 2 dies (its state saved every step), as a killed run."""
    real_loop = Trainer._loop

    def dying_loop(self, name, modules, params, lr, steps, step_fn):  # type: ignore[no-untyped-def]
        def step(i, gen):  # type: ignore[no-untyped-def]
            if i == 2:
                raise _Interrupt
            return step_fn(i, gen)

        return real_loop(self, name, modules, params, lr, steps, step)

    with monkeypatch.context() as patched:
        patched.setattr(Trainer, "_loop", dying_loop)
        with pytest.raises(_Interrupt):
            trainer.t2i("zero_snr", vae)


def test_interrupted_stage_resumes_to_the_same_weights(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    plan = replace(tiny_plan(), t2i_steps=4, save_every=1)
    # given an uninterrupted run
    straight = Trainer(
        plan, out_dir=tmp_path / "a", state_dir=tmp_path / "sa", progress=False, log=lambda _: None
    )
    straight.t2i("zero_snr", straight.autoencoder())
    # and a run killed after step 2 of the T2I stage
    resumed = Trainer(
        plan, out_dir=tmp_path / "b", state_dir=tmp_path / "sb", progress=False, log=lambda _: None
    )
    vae = resumed.autoencoder()
    _kill_t2i_at_step_2(resumed, vae, monkeypatch)
    assert (tmp_path / "sb" / "t2i-zero_snr.pt").is_file()
    # when it runs again
    logs: list[str] = []
    resumed.log = logs.append
    resumed.t2i("zero_snr", vae)
    # then it resumed at step 2 and ends with the same weights
    assert any("resuming at step 2/4" in line for line in logs)
    a, b = _t2i_weights(tmp_path / "a"), _t2i_weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "sb" / "t2i-zero_snr.pt").exists()


def test_saved_state_from_another_starting_point_is_not_resumed(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A stage killed mid-way, then its parent retrained: the stale state must not be loaded
    (it would bring back the old parent's weights)."""
    plan = replace(tiny_plan(), t2i_steps=4, save_every=1)
    trainer = Trainer(
        plan, out_dir=tmp_path / "out", state_dir=tmp_path / "s", progress=False, log=lambda _: None
    )
    vae = trainer.autoencoder()
    _kill_t2i_at_step_2(trainer, vae, monkeypatch)
    # The same stage now starts from other weights (here: another seed for its initialisation).
    monkeypatch.setattr(torch, "manual_seed", lambda seed, _real=torch.manual_seed: _real(seed + 7))
    logs: list[str] = []
    trainer.log = logs.append
    trainer.t2i("zero_snr", vae)
    assert any("starting afresh" in line for line in logs)
    assert not any("resuming" in line for line in logs)
