"""Quality control: quiz, gold comparisons from real videos, mirrored repeats, stopping raters."""

from __future__ import annotations

import numpy as np
import pytest

from raters import gold, quiz, selectors, services
from raters.models import Assignment, Comparison, GoldClip, Judgment, Rater
from tests.factories import UserFactory
from tests.raters.helpers import build_study, judge, qualified_rater, right_quiz_answers

pytestmark = pytest.mark.django_db


def test_quiz_passes_with_the_right_answers_and_screens_out_after_three_failures():
    rater = UserFactory()
    result = services.take_quiz(user=rater, answers=right_quiz_answers(rater))
    assert result.passed and Rater.objects.get(user=rater).is_qualified

    struggling = UserFactory()
    for attempt in range(quiz.MAX_ATTEMPTS):
        failed = services.take_quiz(user=struggling, answers={})
        assert not failed.passed and failed.attempts_left == quiz.MAX_ATTEMPTS - attempt - 1
    with pytest.raises(services.RatingRefused):
        services.take_quiz(user=struggling, answers=right_quiz_answers(struggling))
    assert not Rater.objects.get(user=struggling).is_qualified


def test_degradations_change_what_they_should():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(6, 32, 32, 3), dtype=np.uint8)
    frozen = gold.frozen(frames)
    assert frozen.shape == frames.shape and (frozen == frames[0]).all()
    blurred = gold.blurred(frames)
    assert blurred.shape == frames.shape and blurred.dtype == np.uint8
    # Blur removes high frequencies: neighbouring pixels become much more alike.
    assert (
        np.abs(np.diff(blurred.astype(int), axis=2)).mean()
        < 0.2 * np.abs(np.diff(frames.astype(int), axis=2)).mean()
    )
    shuffled = gold.shuffled(frames, rng=rng)
    assert not np.array_equal(shuffled, frames)
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, frames))


def test_gold_comparisons_are_built_from_real_videos_and_decode():
    study = build_study(prompts=4, gold_comparisons=4)
    golds = study.comparisons.filter(kind=Comparison.Kind.GOLD)
    assert golds.count() == 4
    assert set(GoldClip.objects.values_list("degradation", flat=True)) == set(
        GoldClip.Degradation.values
    )
    for comparison in golds:
        clip = comparison.gold_clip
        assert clip.file.name.startswith("clips/") and clip.poster
        frames, _fps = gold.read_frames(clip.file.path)
        assert frames.shape[0] >= 1
        expected = "faithfulness" if clip.degradation == "other_prompt" else "quality"
        assert comparison.gold_question == expected
        if clip.degradation == "frozen":
            assert np.abs(frames.astype(int) - frames[0].astype(int)).max() <= 8


def _gold_task(study, rater):  # type: ignore[no-untyped-def]
    task = services.next_assignment(study=study, rater=rater)
    while task.comparison.kind != Comparison.Kind.GOLD:
        judge(task)
        task = services.next_assignment(study=study, rater=rater)
    return task


def test_gold_is_mixed_in_at_the_study_rate_and_graded():
    study = build_study(prompts=10, gold_rate=0.2, raters_per_pair=1)
    services.build_gold_comparisons(study=study, count=4)
    rater = qualified_rater()
    kinds = []
    for _ in range(10):
        task = services.next_assignment(study=study, rater=rater)
        kinds.append(task.comparison.kind)
        # Answer gold correctly: the undegraded side is A.
        side = "left" if task.left_is_a else "right"
        judge(task, side, side)
    assert kinds.count(Comparison.Kind.GOLD) == 2
    graded = Judgment.objects.filter(gold_correct__isnull=False)
    assert graded.count() == 2 and all(j.gold_correct for j in graded)
    assert selectors.gold_stats(study=study, user=rater).accuracy == 1.0


def test_rater_under_the_gold_threshold_is_stopped_flagged_and_their_slots_freed():
    study = build_study(prompts=12, gold_rate=0.5, raters_per_pair=1)
    study.gold_min_answers = 2
    study.save()
    services.build_gold_comparisons(study=study, count=6)
    cheat = qualified_rater()
    with pytest.raises(services.RatingRefused):
        for _ in range(12):
            task = services.next_assignment(study=study, rater=cheat)
            wrong = "right" if task.left_is_a else "left"  # always the degraded side
            judge(task, wrong, wrong)
    profile = cheat.rater
    profile.refresh_from_db()
    assert profile.is_flagged and "Gold accuracy 0/2" in profile.flagged_reason
    kept = Judgment.objects.filter(assignment__rater=cheat)
    assert kept.count() >= 3 and all(j.is_flagged for j in kept)
    assert not Assignment.objects.filter(rater=cheat, status=Assignment.Status.ACTIVE).exists()
    real_done = kept.filter(assignment__comparison__kind=Comparison.Kind.REAL)
    for judgment in real_done:
        assert judgment.assignment.comparison.assigned_count == 0, "slot back in the pool"
    assert selectors.rater_stats(user=cheat)["stopped"]


def test_mirrored_repeat_swaps_sides_and_measures_self_consistency():
    study = build_study(prompts=8, mirror_rate=0.25, raters_per_pair=1)
    rater = qualified_rater()
    mirror_task = None
    for _ in range(8):
        task = services.next_assignment(study=study, rater=rater)
        if task.comparison.kind == Comparison.Kind.MIRROR:
            mirror_task = task
            break
        judge(task, "left", "left")
    assert mirror_task is not None
    original = Assignment.objects.get(rater=rater, comparison=mirror_task.comparison.mirror_of)
    assert mirror_task.left_is_a is not original.left_is_a
    assert mirror_task.comparison.video_a_id == original.comparison.video_a_id
    # Choosing the same video again means the other screen side now.
    judgment = judge(mirror_task, "right", "right")
    assert judgment.mirror_consistent is True
    assert selectors.rater_stats(user=rater)["mirror_consistency"] == 1.0
