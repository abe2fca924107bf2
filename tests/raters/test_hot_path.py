"""The rating hot path's written-out SQL agrees with the ORM definitions it stands in for.

Each check runs on SQLite here and again on PostgreSQL in the `services` pass (the SQL
differs: arrays and SKIP LOCKED there, expanded lists here).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from raters import selectors, services
from raters.auth import ProfileBackend
from raters.models import Assignment, Comparison, Rater
from tests.factories import UserFactory
from tests.raters.helpers import build_study, qualified_rater


def _first_free_by_sql(study, rater) -> int | None:  # type: ignore[no-untyped-def]
    sql, params = selectors.first_candidate_sql(study=study, rater=rater)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _check_first_candidate_matches_the_orm() -> None:
    study = build_study(prompts=6, seeds=2, raters_per_pair=3, min_watch_ms=0)
    rater, other = qualified_rater(), qualified_rater()
    # Uneven counts and a history for the rater, so that every filter and the order matter.
    for _ in range(3):
        services.next_assignment(study=study, rater=other)
        Assignment.objects.filter(rater=other, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.DONE
        )
    seen = 0
    for allow_repeats in (False, True):
        study.allow_repeat_prompts = allow_repeats
        study.save(update_fields=["allow_repeat_prompts"])
        while True:
            expected = (
                selectors.real_candidates(study=study, rater=rater)
                .order_by("assigned_count", "id")
                .values_list("id", flat=True)
                .first()
            )
            assert _first_free_by_sql(study, rater) == expected
            if expected is None:
                break
            task = services.next_assignment(study=study, rater=rater)
            assert task is not None and task.comparison_id == expected
            Assignment.objects.filter(pk=task.pk).update(status=Assignment.Status.DONE)
            seen += 1
    assert seen == 12  # six prompts once each, then their other seeds


def _check_task_payload_matches_the_clips() -> None:
    study = build_study(prompts=2, raters_per_pair=1, gold_comparisons=1, gold_rate=0.0)
    rater = qualified_rater()
    gold = Comparison.objects.get(study=study, kind=Comparison.Kind.GOLD)
    for comparison in (Comparison.objects.filter(study=study).first(), gold):
        assignment = Assignment.objects.create(
            comparison=comparison, rater=rater, left_is_a=comparison.pk % 2 == 0
        )
        payload = selectors.task_payload(
            assignment_id=assignment.pk, study=study, progress={"done": 0, "total": 1}
        )
        assert payload["token"] == str(assignment.token)
        assert payload["prompt"] == comparison.prompt.text
        for side in ("left", "right"):
            poster = selectors.clip_file(assignment=assignment, side=side, kind="poster")
            assert bool(payload[side]["poster"]) == bool(poster)
            assert payload[side]["video"].endswith(f"{assignment.token}/{side}/video")
        assert payload["fps"] == min(comparison.video_a.fps, comparison.video_b.fps)


def _check_profile_backend_loads_a_typed_profile() -> None:
    user = UserFactory()
    assert ProfileBackend().get_user(user.pk).pk == user.pk  # no profile yet: still signed in
    now = timezone.now()
    Rater.objects.create(user=user, is_flagged=True, qualified_at=now, is_simulated=True)
    loaded = ProfileBackend().get_user(user.pk)
    profile = loaded.rater
    assert profile.is_flagged is True and profile.is_simulated is True
    assert profile.qualified_at == now
    assert profile.external_id == ""  # a field not loaded up front still loads on use
    assert ProfileBackend().get_user("not-a-number") is None
    user.is_active = False
    user.save()
    assert ProfileBackend().get_user(user.pk) is None


CHECKS = [
    _check_first_candidate_matches_the_orm,
    _check_task_payload_matches_the_clips,
    _check_profile_backend_loads_a_typed_profile,
]


@pytest.mark.django_db
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("_check_"))
def test_on_the_default_database(check) -> None:  # type: ignore[no-untyped-def]
    check()


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("_check_"))
def test_on_postgresql(check) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    check()


@pytest.mark.django_db
def test_study_settings_are_reused_for_a_few_seconds_then_read_again(settings, monkeypatch):
    study = build_study(prompts=1)
    settings.JUICE_STUDY_CACHE_SECONDS = 2
    clock = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(selectors, "_studies", {})
    assert selectors.study_for_rating(slug=study.slug, is_active=True).pk == study.pk
    study.is_active = False
    study.save(update_fields=["is_active"])
    assert selectors.study_for_rating(slug=study.slug, is_active=True) is not None  # reused
    clock[0] += 2.5
    assert selectors.study_for_rating(slug=study.slug, is_active=True) is None
