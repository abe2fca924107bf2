"""Assignment: k distinct raters per comparison, no repeats, balanced sides, expiry, modes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from analysis import intervals
from raters import assignments, selectors, services
from raters.models import Assignment, Comparison, Judgment, Rater, Study
from tests.factories import UserFactory
from tests.raters.helpers import build_study, judge, qualified_rater

pytestmark = pytest.mark.django_db


def _drain(study: Study, raters: list) -> None:
    """Every rater takes and judges tasks until nothing is left for anyone."""
    progress = True
    while progress:
        progress = False
        for rater in raters:
            assignment = services.next_assignment(study=study, rater=rater)
            if assignment is not None:
                judge(assignment)
                progress = True


def test_every_comparison_gets_exactly_k_distinct_raters_and_no_rater_twice():
    study = build_study(prompts=4, raters_per_pair=3)
    raters = [qualified_rater() for _ in range(5)]
    _drain(study, raters)
    for comparison in study.comparisons.all():
        done = comparison.assignments.filter(status=Assignment.Status.DONE)
        assert done.count() == 3
        assert done.values("rater").distinct().count() == 3
        assert comparison.assigned_count == 3
    assert services.next_assignment(study=study, rater=qualified_rater()) is None


def test_same_prompt_at_most_once_per_rater_unless_the_study_allows_it():
    # Two seeds per prompt: two comparisons share each prompt.
    study = build_study(prompts=3, seeds=2, raters_per_pair=5)
    rater = qualified_rater()
    _drain(study, [rater])
    prompts = Assignment.objects.filter(rater=rater).values_list("comparison__prompt", flat=True)
    assert len(prompts) == 3 and len(set(prompts)) == 3

    repeats = build_study(prompts=3, seeds=2, raters_per_pair=5, slug="s2")
    repeats.allow_repeat_prompts = True
    repeats.save()
    other = qualified_rater()
    _drain(repeats, [other])
    assert Assignment.objects.filter(rater=other, comparison__study=repeats).count() == 6


def test_resume_returns_the_open_assignment():
    study = build_study(prompts=3)
    rater = qualified_rater()
    first = services.next_assignment(study=study, rater=rater)
    again = services.next_assignment(study=study, rater=rater)
    assert first == again
    assert Assignment.objects.filter(rater=rater, status=Assignment.Status.ACTIVE).count() == 1


def test_left_right_is_random_but_balanced_per_variant_pair():
    study = build_study(prompts=10, raters_per_pair=4)
    raters = [qualified_rater() for _ in range(4)]
    _drain(study, raters)
    sides = Counter(Assignment.objects.values_list("left_is_a", flat=True))
    assert sides[True] + sides[False] == 40
    assert abs(sides[True] - sides[False]) <= 2
    # Balanced within each comparison, but in a random order: the raters who see A on the
    # left are not the same from one comparison to the next.
    orders = set()
    for comparison in study.comparisons.all():
        order = tuple(comparison.assignments.order_by("id").values_list("left_is_a", flat=True))
        assert sum(order) == 2, order
        orders.add(order)
    assert len(orders) >= 3


def test_odd_k_sides_balance_across_comparisons():
    k = 5
    per_comparison = [
        [assignments.left_is_a_for_slot(comparison_id=c, slot=s, raters=k) for s in range(1, k + 1)]
        for c in range(1, 201)
    ]
    assert all(sum(order) in (2, 3) for order in per_comparison)
    lefts = sum(sum(order) for order in per_comparison)
    assert lefts == 500  # 200 comparisons x 5 slots, A on the left in exactly half
    assert len({tuple(order) for order in per_comparison}) > 5


def test_abandoned_assignment_expires_and_returns_to_the_pool():
    study = build_study(prompts=1, raters_per_pair=1)
    first, second = qualified_rater(), qualified_rater()
    held = services.next_assignment(study=study, rater=first)
    assert services.next_assignment(study=study, rater=second) is None

    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = services.next_assignment(study=study, rater=second)
    assert taken is not None and taken.comparison_id == held.comparison_id
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED
    assert Comparison.objects.get(pk=held.comparison_id).assigned_count == 1


def test_late_answer_to_an_expired_task_counts_when_its_slot_is_still_free():
    study = build_study(prompts=1, raters_per_pair=1)
    rater = qualified_rater()
    held = services.next_assignment(study=study, rater=rater)
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.expire_stale_assignments()
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED
    judgment = judge(held)
    assert judgment.assignment.status == Assignment.Status.DONE
    assert Comparison.objects.get(pk=held.comparison_id).assigned_count == 1


def test_late_answer_to_an_expired_task_is_refused_once_another_rater_took_the_slot():
    # given an expired task whose only slot another rater has since taken
    study = build_study(prompts=1, raters_per_pair=1)
    first, second = qualified_rater(), qualified_rater()
    held = services.next_assignment(study=study, rater=first)
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.expire_stale_assignments()
    taken = services.next_assignment(study=study, rater=second)
    assert taken is not None and taken.comparison_id == held.comparison_id

    # when the first rater answers late, then the answer is refused and the slot stays single
    with pytest.raises(ValidationError, match="expired"):
        judge(held)
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED
    assert not Judgment.objects.filter(assignment=held).exists()
    judge(taken)
    assert Comparison.objects.get(pk=held.comparison_id).assigned_count == 1
    assert Judgment.objects.filter(assignment__comparison_id=held.comparison_id).count() == 1


def test_tasks_per_rater_caps_a_rater():
    study = build_study(prompts=5, tasks_per_rater=2)
    rater = qualified_rater()
    _drain(study, [rater])
    assert Assignment.objects.filter(rater=rater).count() == 2
    assert selectors.rater_finished(study=study, rater=rater)


def _judge_by_new_raters(comparisons, times, quality="left", faithfulness="left", **rater):
    for comparison in comparisons:
        for _ in range(times):
            assignment = Assignment.objects.create(
                comparison=comparison, rater=qualified_rater(**rater), left_is_a=True
            )
            judge(assignment, quality, faithfulness)


def test_adaptive_width_is_the_headline_interval_of_both_questions_without_flagged_raters():
    study = build_study(prompts=6, variants=3, raters_per_pair=3, mode=Study.Mode.ADAPTIVE)
    pairs = list(study.pairs.order_by("id"))
    real = study.comparisons.filter(kind=Comparison.Kind.REAL)
    # pair 0: A wins both questions unanimously on every prompt
    _judge_by_new_raters(real.filter(pair=pairs[0]), 3)
    # pair 1: A wins quality unanimously, faithfulness is split 2–1 for B on every prompt
    for comparison in real.filter(pair=pairs[1]):
        _judge_by_new_raters([comparison], 1, "left", "left")
        _judge_by_new_raters([comparison], 2, "left", "right")
    # pair 2: only judgments of a flagged rater
    flagged = qualified_rater()
    Rater.objects.filter(user=flagged).update(is_flagged=True)
    for comparison in real.filter(pair=pairs[2]):
        judge(Assignment.objects.create(comparison=comparison, rater=flagged, left_is_a=True))

    widths = selectors.pair_ci_widths(study=study)

    prompts = list(real.filter(pair=pairs[0]).values_list("prompt_id", flat=True))
    unanimous = intervals.headline_width(prompts, [(3, 0, 0)] * len(prompts))
    majority_b = intervals.headline_width(prompts, [(1, 2, 0)] * len(prompts))
    assert widths[pairs[0].id] == pytest.approx(unanimous) and unanimous < 0.5
    # the wider question decides (here faithfulness, where A never has the majority)
    assert widths[pairs[1].id] == pytest.approx(max(unanimous, majority_b))
    assert widths[pairs[2].id] == 1.0  # flagged raters' judgments do not count


def test_adaptive_prefers_uncertain_pairs_and_stops_exactly_at_the_target_width():
    study = build_study(prompts=6, variants=3, raters_per_pair=3, mode=Study.Mode.ADAPTIVE)
    study.calibration_fraction = 0.2
    study.save()
    pairs = list(study.pairs.order_by("id"))
    real = study.comparisons.filter(kind=Comparison.Kind.REAL, is_calibration=False)
    _judge_by_new_raters(real.filter(pair=pairs[0]), 2)
    rater = qualified_rater()
    widths = selectors.pair_ci_widths(study=study)
    assert widths[pairs[0].id] < widths[pairs[1].id] == 1.0

    # below pair 0's width nothing has converged; the widest pairs are served first
    study.target_ci_width = widths[pairs[0].id] + 1e-9
    study.save()
    assert not selectors.adaptive_converged(study=study)
    assert real.filter(pair=pairs[1]).exists()
    assert any(not c.is_calibration for c in selectors.real_candidates(study=study, rater=rater))
    assignment = services.next_assignment(study=study, rater=rater)
    assert assignment.comparison.is_calibration or assignment.comparison.pair_id != pairs[0].id

    # once every pair is narrower than the target, only calibration comparisons remain
    for pair in pairs[1:]:
        _judge_by_new_raters(real.filter(pair=pair), 2)
    widest = max(selectors.pair_ci_widths(study=study).values())
    study.target_ci_width = widest
    study.save()
    assert not selectors.adaptive_converged(study=study)  # the rule is "narrower than"
    study.target_ci_width = widest + 1e-9
    study.save()
    assert selectors.adaptive_converged(study=study)
    assert all(c.is_calibration for c in selectors.real_candidates(study=study, rater=rater))
    assert study.comparisons.filter(is_calibration=True).count() >= 3


def test_unqualified_and_stopped_raters_are_refused():
    study = build_study(prompts=2, require_qualification=True)
    newcomer = UserFactory()
    with pytest.raises(services.RatingRefused) as refused:
        services.next_assignment(study=study, rater=newcomer)
    assert refused.value.code == "not_qualified"
    services.qualify_rater(user=newcomer)
    assert services.next_assignment(study=study, rater=newcomer) is not None

    services.stop_rater(rater=newcomer.rater, reason="test")
    with pytest.raises(services.RatingRefused) as stopped:
        services.next_assignment(study=study, rater=newcomer)
    assert stopped.value.code == "stopped"


def test_expiry_task_returns_abandoned_slots():
    from raters.tasks import expire_assignments

    study = build_study(prompts=1, raters_per_pair=1)
    held = services.next_assignment(study=study, rater=qualified_rater())
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_assignments.run() == 1
    assert Comparison.objects.get(pk=held.comparison_id).assigned_count == 0


def test_expiry_sweep_is_throttled_per_study_and_the_beat_task_still_sweeps(settings):
    settings.JUICE_EXPIRY_SWEEP_SECONDS = 60
    study = build_study(prompts=1, raters_per_pair=1)
    first, second = qualified_rater(), qualified_rater()
    held = services.next_assignment(study=study, rater=first)
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # Within the interval the lazy sweep is skipped: the abandoned slot is not free yet.
    assert services.next_assignment(study=study, rater=second) is None
    services.expire_stale_assignments()
    taken = services.next_assignment(study=study, rater=second)
    assert taken is not None and taken.comparison_id == held.comparison_id


def test_progress_estimate_bounds_by_room_and_by_what_the_rater_has_not_seen():
    study = build_study(prompts=4, raters_per_pair=1)
    first, second = qualified_rater(), qualified_rater()
    assert selectors.rater_progress(study=study, rater=first) == {"done": 0, "total": 4}
    task = services.next_task(study=study, rater=first)
    assert task.progress == {"done": 0, "total": 4}
    judge(task.assignment)
    # Three prompts still have room: the second rater can get at most those.
    assert selectors.rater_progress(study=study, rater=second) == {"done": 0, "total": 3}
    assert selectors.rater_progress(study=study, rater=first) == {"done": 1, "total": 4}


def test_a_check_due_after_a_slot_came_free_is_handed_out_while_the_count_is_stale(settings):
    """The study-wide count of what is left is reused for seconds. A rater due a check whom
    that count tells nothing is left, while a slot has come free since, still gets work: else
    `next` says "done" while the done page, which counts exactly, sends them back to rate."""
    settings.JUICE_PROGRESS_CACHE_SECONDS = 60
    study = build_study(prompts=1, raters_per_pair=1, gold_comparisons=1, gold_rate=0.99)
    holder, rater = qualified_rater(), qualified_rater()
    while not selectors.check_due(
        study=study, rater_id=rater.pk, kind=Comparison.Kind.GOLD, done=0, total=0
    ):
        rater = qualified_rater()  # one whose first task is a check (99 in 100 are)
    real = Comparison.objects.get(study=study, kind=Comparison.Kind.REAL)
    held = Assignment.objects.create(comparison=real, rater=holder, left_is_a=True)
    Comparison.objects.filter(pk=real.pk).update(assigned_count=1)
    assert selectors.study_room(study=study).prompts_open == 0  # counted while full, kept
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.expire_stale_assignments()
    assert not selectors.rater_finished(study=study, rater=rater)

    task = services.next_assignment(study=study, rater=rater)
    assert task is not None and task.comparison.kind == Comparison.Kind.GOLD
    judge(task)
    task = services.next_assignment(study=study, rater=rater)
    assert task is not None and task.comparison_id == real.pk
