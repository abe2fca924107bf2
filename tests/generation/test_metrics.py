"""Automatic metrics: the procedural classifier, faithfulness, Fréchet distance, score_batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.management import call_command

from generation.video import metrics
from generation.video.data import make_video_set, reference_videos
from generation.video.export import write_mp4

PROMPTS = [
    "a red circle moves left on a blue background",
    "a green square grows on a black background",
]


@pytest.fixture(scope="module")
def classifier() -> metrics.VideoClassifier:
    torch.manual_seed(0)
    return metrics.VideoClassifier().eval()


class _Fixed(metrics.VideoClassifier):
    """Always says: red circle moving left on a blue background."""

    def logits(self, videos):  # type: ignore[no-untyped-def]
        n = len(videos)
        picks = {"colour": 0, "shape": 0, "motion": 0, "background": 2}
        return {
            k: torch.nn.functional.one_hot(torch.full((n,), picks[k]), size).float()
            for k, size in metrics.HEADS.items()
        }


def test_faithfulness_compares_predictions_with_the_prompt():
    videos = list(reference_videos(PROMPTS, seed=0).videos) + [np.zeros((8, 32, 32, 3), np.uint8)]
    scores = metrics.score_videos(_Fixed(), videos, PROMPTS + ["a corgi surfing"])
    assert scores[0].faithfulness == 1.0 and scores[0].background_ok
    assert (scores[1].color_ok, scores[1].shape_ok, scores[1].motion_ok) == (False, False, False)
    assert scores[1].faithfulness == 0.0
    assert scores[2].faithfulness is None and scores[2].color_ok is None
    assert scores[0].predicted == {
        "colour": "red",
        "shape": "circle",
        "motion": "left",
        "background": "blue",
    }


def test_classifier_features_accept_other_sizes_and_lengths(classifier):  # type: ignore[no-untyped-def]
    small = classifier(np.zeros((2, 8, 32, 32, 3), np.uint8))
    upscaled_long = classifier(np.zeros((2, 29, 256, 256, 3), np.uint8))
    assert small.shape == upscaled_long.shape == (2, metrics.VideoClassifier.num_features)


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_difference(classifier):  # type: ignore[no-untyped-def]
    real = make_video_set(24, seed=0).videos
    other = make_video_set(24, seed=5).videos
    noise = np.random.default_rng(0).integers(0, 255, real.shape, dtype=np.uint8)
    same = metrics.frechet_distance(classifier, real, real)
    near = metrics.frechet_distance(classifier, other, real)
    far = metrics.frechet_distance(classifier, noise, real)
    assert abs(same) < 1e-2
    assert near < far


def test_a_few_training_steps_make_the_classifier_better_than_chance():
    data = make_video_set(64, seed=0)
    model, losses = metrics.train_classifier(data, steps=40, seed=0, batch=16)
    assert losses[-1] < losses[0]
    preds = metrics.predict(model, data.videos)
    assert (preds["colour"] == data.labels[:, 0]).mean() > 1 / 6 + 0.15


def test_save_and_load_keep_predictions_and_name_a_version(classifier, tmp_path):  # type: ignore[no-untyped-def]
    metrics.save_classifier(classifier, tmp_path / "classifier", card={"name": "classifier"})
    loaded, version = metrics.load_classifier(tmp_path / "classifier")
    videos = make_video_set(4, seed=0).videos
    torch.testing.assert_close(loaded(videos), classifier(videos), atol=2e-2, rtol=1e-2)
    assert version.startswith("classifier-")


@pytest.mark.django_db
def test_score_batch_stores_scores_on_each_video(classifier, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from tests.factories import GenerationBatchFactory, GenerationJobFactory, VideoFactory

    metrics.save_classifier(classifier, tmp_path / "classifier", card={"name": "classifier"})
    monkeypatch.setenv("JUICE_CHECKPOINT_DIR", str(tmp_path))
    batch = GenerationBatchFactory()
    real = reference_videos(PROMPTS, seed=1).videos
    for i, (prompt, frames) in enumerate(zip(PROMPTS, real, strict=True)):
        job = GenerationJobFactory(batch=batch, prompt__text=prompt, seed=i)
        path = Path(tmp_path) / f"{i}.mp4"
        write_mp4(frames, path, fps=4)
        VideoFactory(job=job, file=ContentFile(path.read_bytes(), name="v.mp4"))
    call_command("score_batch", str(batch.pk), stdout=open("/dev/null", "w"))
    from generation.models import Video

    for video in Video.objects.filter(job__batch=batch):
        assert set(video.scores) >= {"faithfulness", "color_ok", "shape_ok", "motion_ok"}
        assert 0.0 <= video.scores["faithfulness"] <= 1.0
        assert video.scores["classifier_version"].startswith("classifier-")
        assert "frechet_variant" in video.scores
