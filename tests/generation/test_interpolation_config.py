"""Registration refuses interpolation configs that cannot work (against the shipped checkpoints)."""

from __future__ import annotations

import shutil

import pytest
from django.core.exceptions import ValidationError

from generation import services
from generation.video import checkpoints
from generation.video.config import ConfigError, VariantConfig
from generation.video.training import TrainingPlan


def test_the_shipped_interpolator_card_names_its_scheduler():
    card = checkpoints.read_card(checkpoints.PACKAGE_CHECKPOINT_DIR / checkpoints.INTERPOLATION)
    assert card["scheduler"] == {"schedule": "zero_snr", "prediction_type": "v_prediction"}


def test_the_shipped_interpolator_card_says_how_its_sampler_runs():
    card = checkpoints.read_card(checkpoints.PACKAGE_CHECKPOINT_DIR / checkpoints.INTERPOLATION)
    found = checkpoints.find_interpolator(
        VariantConfig(interpolation=True),
        checkpoints.PACKAGE_CHECKPOINT_DIR,
        checkpoints.PACKAGE_CHECKPOINT_DIR,
    )
    assert card["sampling"]["key_frames"] == "replaced"
    # what train_variants writes into the card is what ships
    plan = TrainingPlan()
    assert (found.strength, found.guidance_text) == (
        plan.interp_strength,
        plan.interp_guidance_text,
    )


def test_interpolation_with_the_interpolators_schedule_is_accepted_with_a_note():
    config, notes = services.checked_variant_config({"interpolation": True})
    assert config.interpolation  # type: ignore[union-attr]
    assert any("own zero_snr scheduler (v_prediction)" in note for note in notes)


@pytest.mark.parametrize("schedule", ["standard", "linear"])
def test_interpolation_with_another_schedule_is_refused(schedule, settings, tmp_path):  # type: ignore[no-untyped-def]
    # given checkpoints for the schedule (linear may not be shipped: use standard's folders)
    root = tmp_path / "ckpt"
    shipped = checkpoints.PACKAGE_CHECKPOINT_DIR
    for name in ("autoencoder", "interpolation", "t2i-standard"):
        shutil.copytree(shipped / name, root / name)
    shutil.copytree(
        shipped / "video-factorized-standard-frozen",
        root / f"video-factorized-{schedule}-frozen",
    )
    settings.JUICE_CHECKPOINT_DIR = str(root)
    # the variant alone registers
    services.check_variant_config({"schedule": schedule})
    # with the zero-SNR interpolator it is refused, with the reason
    with pytest.raises(ValidationError, match="trained with the zero_snr schedule"):
        services.check_variant_config({"schedule": schedule, "interpolation": True})


def test_interpolation_of_another_frame_count_is_refused():
    with pytest.raises(ValidationError, match="trained on 8 given frames"):
        services.check_variant_config({"interpolation": True, "frames": 12})


def test_an_interpolator_whose_card_contradicts_its_schedule_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "ckpt"
    shutil.copytree(checkpoints.PACKAGE_CHECKPOINT_DIR / "interpolation", root / "interpolation")
    card = checkpoints.read_card(root / "interpolation")
    card["scheduler"] = {"schedule": "zero_snr", "prediction_type": "epsilon"}
    checkpoints.write_card(root / "interpolation", card)
    with pytest.raises(ConfigError, match="is trained with v_prediction"):
        checkpoints.find_interpolator(VariantConfig(interpolation=True), tmp_path, root)
