"""JUICE rules on the server: reasons, ties, watch time, once per assignment, A/B storage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from raters import services
from raters.models import Assignment, Judgment
from tests.raters.helpers import WATCHED, answer, build_study, faith, judge, qualified_rater

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    study = build_study(prompts=2)
    return services.next_assignment(study=study, rater=qualified_rater())


def _submit(task, quality, faithfulness, watch=WATCHED):  # type: ignore[no-untyped-def]
    return services.submit_judgment(
        assignment=task, quality=quality, faithfulness=faithfulness, watch=watch
    )


def test_a_choice_without_a_reason_is_refused(task):
    with pytest.raises(ValidationError) as refused:
        _submit(task, answer("left", ()), faith())
    assert "quality_reasons" in refused.value.message_dict
    assert not Judgment.objects.exists()


def test_a_tie_needs_tie_reasons_and_a_study_may_forbid_ties(task):
    with pytest.raises(ValidationError) as no_reason:
        _submit(task, answer("tie", ()), faith())
    assert "quality_reasons" in no_reason.value.message_dict
    with pytest.raises(ValidationError):
        _submit(task, answer("tie", ("pixel_sharpness",)), faith())
    judgment = _submit(task, answer("tie", ("equally_bad",)), faith())
    assert judgment.quality == "tie"

    study = build_study(prompts=1, slug="noties", allow_ties=False)
    other = services.next_assignment(study=study, rater=qualified_rater())
    with pytest.raises(ValidationError) as forbidden:
        _submit(other, answer("tie", ("equally_good",)), faith())
    assert "ties are not allowed" in str(forbidden.value)


def test_unknown_or_duplicate_reasons_are_refused(task):
    with pytest.raises(ValidationError):
        _submit(task, answer("left", ("spatial_alignment",)), faith())
    with pytest.raises(ValidationError):
        _submit(task, answer("left", ("pixel_sharpness", "pixel_sharpness")), faith())


def test_both_clips_must_have_played_through_for_the_minimum_time():
    study = build_study(prompts=1, min_watch_ms=3000)
    task = services.next_assignment(study=study, rater=qualified_rater())
    Assignment.objects.filter(pk=task.pk).update(created_at=task.created_at - timedelta(minutes=1))
    task.refresh_from_db()
    with pytest.raises(ValidationError) as not_played:
        _submit(task, answer(), faith(), services.WatchReport(played_through=False, watch_ms=9000))
    assert "played_through" in not_played.value.message_dict
    with pytest.raises(ValidationError) as too_short:
        _submit(task, answer(), faith(), services.WatchReport(played_through=True, watch_ms=100))
    assert "watch_ms" in too_short.value.message_dict
    judgment = _submit(
        task, answer(), faith(), services.WatchReport(True, 3500, 8000, replays=2, seeks=3)
    )
    assert (judgment.watch_ms, judgment.replays, judgment.seeks) == (3500, 2, 3)


def test_a_claimed_watch_time_longer_than_the_real_time_is_refused():
    study = build_study(prompts=1, min_watch_ms=60_000)
    task = services.next_assignment(study=study, rater=qualified_rater())
    with pytest.raises(ValidationError) as too_fast:
        _submit(task, answer(), faith(), services.WatchReport(True, 70_000))
    assert "faster than the videos can play" in str(too_fast.value)


def test_answers_are_stored_in_a_b_terms_whatever_side_was_left(task):
    task.left_is_a = False
    task.save()
    judgment = _submit(task, answer("left"), faith("right"))
    assert (judgment.quality, judgment.faithfulness) == ("b", "a")


def test_a_second_submit_returns_the_first_judgment(task):
    first, created = services.record_judgment(
        assignment=task, quality=answer("left"), faithfulness=faith(), watch=WATCHED
    )
    again, created_again = services.record_judgment(
        assignment=task, quality=answer("right"), faithfulness=faith(), watch=WATCHED
    )
    assert created and not created_again
    assert first.pk == again.pk and again.quality == first.quality
    assert Judgment.objects.count() == 1
    task.refresh_from_db()
    assert task.status == Assignment.Status.DONE
    assert judge(task).pk == first.pk
