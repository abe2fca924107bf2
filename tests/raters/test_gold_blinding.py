"""Gold and mirrored checks look like real tasks to everything a browser sees without playing a
clip: poster and clip byte sizes, the task counter, and how long the next task takes to arrive.

Given a study of real (varied) videos written the way generation writes them, with gold clips
built by the service, raters take tasks through the API; then simple classifiers trained on
what their browsers saw must not tell checks from real tasks better than 60% (balanced
accuracy, cross-validated leaving whole prompts out: a check shares its prompt with the real
comparison it was made from, so the classifier has to go by what files of its kind look like,
not by remembering one clip it met before with its label. Remembering clips is what a farm of
bots sharing notes could do with any fixed pool of gold checks; the defence there is a pool
larger than a farm sees, which this test does not measure).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from generation.video.export import write_mp4, write_poster
from raters import gold, studies
from raters.models import Assignment, Comparison
from tests.factories import GenerationBatchFactory, ModelVariantFactory, PromptFactory, VideoFactory
from tests.raters.helpers import qualified_rater

pytestmark = pytest.mark.django_db

NATIVE = 32
CHANCE_LIMIT = 0.60


def _clip(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A small model-like clip: a smooth random scene with a textured object moving across."""
    grid = rng.uniform(30, 220, size=(4, 4, 3))
    scene = np.kron(grid, np.ones((NATIVE // 4, NATIVE // 4, 1)))
    scene = gold._box_blur(gold._box_blur(scene, 3, axis=0), 3, axis=1)
    texture = rng.uniform(0, rng.uniform(10, 90))
    size = int(rng.integers(8, 16))
    start = rng.uniform(0, NATIVE - size, size=2)
    step = rng.uniform(-2.5, 2.5, size=2)
    colour = rng.uniform(0, 255, size=3)
    out = np.repeat(scene[None], frames, axis=0)
    for t in range(frames):
        y, x = np.clip(start + step * t, 0, NATIVE - size).astype(int)
        patch = colour + rng.normal(0, texture, size=(size, size, 3))
        out[t, y : y + size, x : x + size] = patch
        out[t] += rng.normal(0, texture / 8, size=out[t].shape)
    result: np.ndarray = np.clip(out, 0, 255).astype(np.uint8)
    return result


def _study(*, prompts: int, frames: int = 8, fps: int = 8):  # type: ignore[no-untyped-def]
    batch = GenerationBatchFactory()
    variants = [ModelVariantFactory(), ModelVariantFactory()]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in [PromptFactory(prompt_set=batch.prompt_set) for _ in range(prompts)]:
            for variant in variants:
                clip = _clip(rng, frames)
                mp4, png = Path(tmp) / "v.mp4", Path(tmp) / "p.png"
                write_mp4(clip, mp4, fps=fps)
                write_poster(clip[0], png)
                VideoFactory(
                    job__batch=batch,
                    job__variant=variant,
                    job__prompt=prompt,
                    job__seed=0,
                    file=ContentFile(mp4.read_bytes(), name="v.mp4"),
                    poster=ContentFile(png.read_bytes(), name="p.png"),
                    frames=frames,
                    fps=fps,
                    width=NATIVE,
                    height=NATIVE,
                )
    study = studies.create_study(
        name="blind",
        slug="blind",
        sources=[batch],
        pairs=[(variants[0], variants[1])],
        raters_per_pair=10,
        require_qualification=False,
        gold_rate=0.3,
        mirror_rate=0.1,
        min_watch_ms=0,
        gold_comparisons=8,
    )
    # These raters answer at random: keep them rating (quality control is tested elsewhere).
    study.gold_accuracy_threshold = 0.0
    study.save(update_fields=["gold_accuracy_threshold"])
    return study


def _served_tasks(study, raters: int) -> list[tuple[list[float], bool, int]]:  # type: ignore[no-untyped-def]
    """(features, is_check, prompt id) for every task served, as a rater's browser measures
    them (the prompt id only groups the cross-validation)."""
    rows = []
    for _ in range(raters):
        client = APIClient()
        client.force_login(qualified_rater())
        last_total = None
        while True:
            started = time.perf_counter()
            response = client.post(f"/api/studies/{study.slug}/next/")
            waited_ms = (time.perf_counter() - started) * 1000
            if response.status_code == 204:
                break
            assert response.status_code == 200, response.content
            task = response.json()
            sizes = {}
            for side in ("left", "right"):
                for kind in ("video", "poster"):
                    url = task[side][kind]
                    sizes[side, kind] = (
                        len(b"".join(client.get(url).streaming_content)) if url else 0
                    )
            total = task["progress"]["total"]
            videos = sorted([sizes["left", "video"], sizes["right", "video"]])
            posters = sorted([sizes["left", "poster"], sizes["right", "poster"]])
            features = [
                *videos,
                videos[1] - videos[0],
                videos[1] / max(1, videos[0]),
                *posters,
                posters[1] - posters[0],
                posters[1] / max(1, posters[0]),
                sizes["left", "video"] - sizes["right", "video"],
                sizes["left", "poster"] - sizes["right", "poster"],
                0 if last_total is None else total - last_total,
                task["progress"]["done"],
                waited_ms,
            ]
            comparison = Assignment.objects.get(token=task["token"]).comparison
            rows.append((features, comparison.kind != Comparison.Kind.REAL, comparison.prompt_id))
            last_total = total
            _submit_left(client, task["token"])
    return rows


# --- simple classifiers, cross-validated on balanced classes ---------------------------------


def _stump(train_x, train_y, test_x):  # type: ignore[no-untyped-def]
    """The best single-feature threshold on the training folds."""
    best = (-1.0, 0, 0.0, True)
    for j in range(train_x.shape[1]):
        for threshold in np.unique(train_x[:, j]):
            for above in (True, False):
                guess = (train_x[:, j] >= threshold) == above
                score = _balanced(train_y, guess)
                if score > best[0]:
                    best = (score, j, threshold, above)
    _score, j, threshold, above = best
    return (test_x[:, j] >= threshold) == above


def _logistic(train_x, train_y, test_x):  # type: ignore[no-untyped-def]
    mean, std = train_x.mean(0), train_x.std(0) + 1e-9
    x, t = (train_x - mean) / std, (test_x - mean) / std
    weights, bias = np.zeros(x.shape[1]), 0.0
    for _ in range(500):
        p = 1 / (1 + np.exp(-(x @ weights + bias)))
        weights -= 0.1 * (x.T @ (p - train_y) / len(x) + 0.01 * weights)
        bias -= 0.1 * float(np.mean(p - train_y))
    return (t @ weights + bias) > 0


def _nearest(train_x, train_y, test_x, k: int = 5):  # type: ignore[no-untyped-def]
    mean, std = train_x.mean(0), train_x.std(0) + 1e-9
    x, t = (train_x - mean) / std, (test_x - mean) / std
    distances = ((t[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(distances, axis=1)[:, :k]
    return train_y[nearest].mean(1) > 0.5


def _balanced(truth, guess) -> float:  # type: ignore[no-untyped-def]
    truth, guess = np.asarray(truth, bool), np.asarray(guess, bool)
    return float((np.mean(guess[truth]) + np.mean(~guess[~truth])) / 2)


def _cross_validated(classifier, x, y, groups, folds: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Balanced accuracy over `folds` folds that each leave whole groups (prompts) out."""
    names = np.random.default_rng(0).permutation(np.unique(groups))
    guesses = np.zeros(len(x), bool)
    for held_out in np.array_split(names, folds):
        test = np.isin(groups, held_out)
        guesses[test] = classifier(x[~test], y[~test], x[test])
    return _balanced(y, guesses)


def test_a_classifier_on_what_the_browser_sees_cannot_spot_gold_or_mirrors():
    study = _study(prompts=14)
    rows = _served_tasks(study, raters=7)
    x = np.array([features for features, _check, _prompt in rows], dtype=float)
    y = np.array([check for _features, check, _prompt in rows], dtype=float)
    groups = np.array([prompt for _features, _check, prompt in rows])
    assert len(rows) >= 100 and 25 <= y.sum() <= len(y) - 25, (len(rows), y.sum())
    kinds = set(Comparison.objects.filter(study=study).values_list("kind", flat=True))
    assert kinds == {"real", "gold", "mirror"}
    scores = {
        name: _cross_validated(classifier, x, y, groups)
        for name, classifier in (("stump", _stump), ("logistic", _logistic), ("5-NN", _nearest))
    }
    print(f"{len(rows)} tasks, {int(y.sum())} checks; balanced accuracy:", scores)
    assert max(scores.values()) <= CHANCE_LIMIT, scores


def test_gold_clips_take_the_byte_sizes_of_the_real_video_they_replace():
    study = _study(prompts=6)
    for comparison in study.comparisons.filter(kind=Comparison.Kind.GOLD):
        clip, partner = comparison.gold_clip, comparison.video_b
        assert clip.file.size == partner.file.size, clip.get_degradation_display()
        assert clip.poster.size >= partner.poster.size
        frames, fps = gold.read_frames(clip.file.path)
        assert len(frames) == partner.frames and fps == partner.fps


def test_the_counter_total_does_not_move_on_checks():
    study = _study(prompts=8)
    client = APIClient()
    client.force_login(qualified_rater())
    totals = []
    while (response := client.post(f"/api/studies/{study.slug}/next/")).status_code == 200:
        task = response.json()
        totals.append(task["progress"]["total"])
        _submit_left(client, task["token"])

    def kinds_in_order() -> list[str]:
        return list(Assignment.objects.order_by("id").values_list("comparison__kind", flat=True))

    assert "gold" in kinds_in_order()
    assert len(set(totals)) == 1, f"{totals} {kinds_in_order()}"
    assert totals[0] == len(totals)


def _submit_left(client, token: str) -> None:
    """A watched-through judgment preferring the left video on both questions."""
    client.post(
        "/api/judgments/",
        {
            "token": token,
            "quality": "left",
            "quality_reasons": ["pixel_sharpness"],
            "faithfulness": "left",
            "faithfulness_reasons": ["spatial_alignment"],
            "watch_ms": 3000,
            "played_through": True,
        },
        format="json",
    )
