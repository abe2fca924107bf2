"""Every statement of raters.hot_path agrees with the ORM definition it stands in for.

Each check runs on SQLite here and again on PostgreSQL in the `services` pass (the SQL
differs: row locks and SKIP LOCKED there, none here). A check compares the statement's answer
with the ORM's on the same rows, so a statement that drifts from its definition fails it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from raters import hot_path, selectors, services
from raters.auth import ProfileBackend
from raters.models import Assignment, Comparison, Judgment, Rater, copy_comparison_fields
from tests.factories import UserFactory
from tests.raters.helpers import build_study, judge, qualified_rater

ACTIVE, DONE, EXPIRED = Assignment.Status.ACTIVE, Assignment.Status.DONE, Assignment.Status.EXPIRED
REAL, GOLD, MIRROR = Comparison.Kind.REAL, Comparison.Kind.GOLD, Comparison.Kind.MIRROR


def _rolled_back(run: Any) -> Any:
    """`run()`'s answer, its writes undone (the next statement sees the rows as before)."""
    with transaction.atomic():
        answer = run()
        transaction.set_rollback(True)
    return answer


def _values(obj: Any, names: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def _check_locked_profile_matches_the_orm() -> None:
    user = UserFactory()
    assert hot_path.locked_profile(user.pk) is None
    Rater.objects.create(user=user, external_id="w-1", quiz_attempts=2, qualified_at=timezone.now())
    names = [f.attname for f in Rater._meta.concrete_fields]
    user_names = [f.attname for f in type(user)._meta.concrete_fields]
    with transaction.atomic():
        orm = Rater.objects.select_related("user").select_for_update(of=("self",))
        expected = orm.get(user_id=user.pk)
        found = hot_path.locked_profile(user.pk)
        assert found is not None
        assert _values(found, names) == _values(expected, names)
        assert _values(found.user, user_names) == _values(expected.user, user_names)
        assert found.user.rater is found


def _state_by_orm(study: Any, rater: Any) -> tuple[Any, ...]:
    real = Q(comparison__kind=REAL)
    counts = Assignment.objects.filter(rater=rater, comparison__study=study).aggregate(
        active=Min("id", filter=Q(status=ACTIVE)),
        open=Count("id", filter=Q(status=ACTIVE)),
        done=Count("id", filter=Q(status=DONE)),
        seen_real=Count("id", filter=real),
        prompts=Count("comparison__prompt_id", distinct=True, filter=real),
        **{
            kind: Count("id", filter=~Q(status=EXPIRED) & Q(comparison__kind=kind))
            for kind in hot_path.STATE_KINDS
        },
    )
    return tuple(counts.values())


def _check_rater_state_matches_the_orm() -> None:
    study = build_study(prompts=4, seeds=2, gold_comparisons=2, gold_rate=0.0)
    rater, other = qualified_rater(), qualified_rater()
    other_study = build_study(prompts=2, slug="s2")
    services.next_assignment(study=other_study, rater=rater)  # another study: not counted

    def state() -> tuple[Any, ...]:
        row = hot_path.rater_state_row(study_id=study.pk, rater_id=rater.pk)
        return tuple(value or 0 if i else value for i, value in enumerate(row))

    assert state() == _state_by_orm(study, rater)  # nothing yet
    golds = list(Comparison.objects.filter(study=study, kind=GOLD))
    reals = list(Comparison.objects.filter(study=study, kind=REAL).order_by("id"))
    for comparison, status in zip(
        [*reals[:4], golds[0]], [DONE, DONE, EXPIRED, ACTIVE, ACTIVE], strict=True
    ):
        Assignment.objects.create(comparison=comparison, rater=rater, status=status, left_is_a=True)
    Assignment.objects.create(comparison=reals[5], rater=other, left_is_a=True)
    assert state() == _state_by_orm(study, rater)
    assert state()[0] is not None and state()[1] == 2


def _first_free_by_orm(study: Any, rater: Any) -> Any:
    return (
        selectors.real_candidates(study=study, rater=rater)
        .order_by("assigned_count", "id")
        .values_list("id", "assigned_count", "prompt_id")
        .first()
    )


def _check_first_free_claim_matches_the_orm() -> None:
    study = build_study(prompts=6, seeds=2, raters_per_pair=3, min_watch_ms=0)
    rater, other = qualified_rater(), qualified_rater()
    # Uneven counts and a history for the rater, so that every filter and the order matter.
    for _ in range(3):
        services.next_assignment(study=study, rater=other)
        Assignment.objects.filter(rater=other, status=ACTIVE).update(status=DONE)
    seen = 0
    for allow_repeats in (False, True):
        study.allow_repeat_prompts = allow_repeats
        study.save(update_fields=["allow_repeat_prompts"])
        while True:
            expected = _first_free_by_orm(study, rater)
            claimed = _rolled_back(
                lambda: hot_path.claim_first_free(
                    study_id=study.pk,
                    raters_per_pair=study.raters_per_pair,
                    rater_id=rater.pk,
                    repeat_prompts=study.allow_repeat_prompts,
                )
            )
            if expected is None:
                assert claimed is None
                break
            comparison_id, count, prompt_id = expected
            assert claimed == (comparison_id, count + 1, prompt_id)
            task = services.next_assignment(study=study, rater=rater)
            assert task is not None and task.comparison_id == comparison_id
            Assignment.objects.filter(pk=task.pk).update(status=DONE)
            seen += 1
    assert seen == 12  # six prompts once each, then their other seeds


def _check_claim_of_one_comparison_matches_the_orm() -> None:
    study = build_study(prompts=1, raters_per_pair=2)
    comparison = Comparison.objects.get(study=study)
    for _ in range(3):

        def by_orm() -> Any:
            taken = Comparison.objects.filter(pk=comparison.pk, assigned_count__lt=2).update(
                assigned_count=F("assigned_count") + 1
            )
            row = Comparison.objects.values_list("id", "assigned_count", "prompt_id")
            return row.get(pk=comparison.pk) if taken else None

        expected = _rolled_back(by_orm)
        claimed = hot_path.claim_comparison(comparison_id=comparison.pk, raters_per_pair=2)
        assert claimed == expected
    comparison.refresh_from_db()
    assert comparison.assigned_count == 2


def _check_gold_claim_matches_the_orm() -> None:
    # Given six gold checks, one per prompt, and a rater who has rated three of the prompts
    study = build_study(prompts=6, gold_comparisons=6, gold_rate=0.0)
    rater = qualified_rater()
    for _ in range(3):
        judge(services.next_assignment(study=study, rater=rater))
    golds = Comparison.objects.filter(study=study, kind=GOLD)
    counts_before = dict(golds.values_list("id", "assigned_count"))
    while True:
        unseen = set(golds.exclude(assignments__rater=rater).values_list("id", "prompt_id"))
        met = set(
            Assignment.objects.filter(rater=rater, comparison__study=study).values_list(
                "comparison__prompt_id", flat=True
            )
        )
        claimed = hot_path.claim_gold(study_id=study.pk, rater_id=rater.pk)
        if not unseen:
            assert claimed is None
            break
        # Then checks on prompts the rater has not met come first, whatever the random order
        assert claimed in ({gold for gold in unseen if gold[1] not in met} or unseen)
        Assignment.objects.create(comparison_id=claimed[0], rater=rater, left_is_a=True)
    counts = dict(golds.values_list("id", "assigned_count"))
    assert counts == {pk: n + 1 for pk, n in counts_before.items()}


def _check_insert_matches_the_orm() -> None:
    study = build_study(prompts=1)
    rater = qualified_rater()
    comparison = Comparison.objects.get(study=study)
    now = timezone.now()
    new = Assignment(
        comparison=comparison,
        rater=rater,
        left_is_a=False,
        status=ACTIVE,
        expires_at=now + timedelta(minutes=5),
        created_at=now,
    )
    copy_comparison_fields(new)  # set by its caller, as Assignment.save() would
    inserted = hot_path.insert_assignment(new)
    assert inserted is not None
    assignment_id, page = inserted
    assert page == hot_path.payload_row(assignment_id)  # the page data read back with it
    names = [name for name in hot_path.INSERTED_FIELDS]
    assert _values(Assignment.objects.get(pk=assignment_id), names) == _values(new, names)
    again = Assignment(
        comparison=comparison, rater=rater, left_is_a=True, expires_at=now, created_at=now
    )
    copy_comparison_fields(again)
    assert hot_path.insert_assignment(again) is None
    Assignment.objects.bulk_create([again], ignore_conflicts=True)  # the ORM's: no row either
    assert Assignment.objects.filter(comparison=comparison).count() == 1


def _check_judgment_insert_matches_the_orm() -> None:
    study = build_study(prompts=2, min_watch_ms=0)
    rater = qualified_rater()
    names = [f.attname for f in Judgment._meta.concrete_fields if not f.primary_key]

    def judgment(task: Any) -> Judgment:
        return Judgment(
            assignment=task,
            quality=Judgment.Choice.A,
            quality_reasons=["pixel_sharpness"],
            faithfulness=Judgment.Choice.TIE,
            faithfulness_reasons=["equally_good", "equally_bad"],
            time_spent_ms=1234,
            watch_ms=999,
            replays=2,
            seeks=1,
            played_through=True,
            gold_correct=False,
            is_simulated=True,
        )

    by_orm = services.next_assignment(study=study, rater=rater)
    # The ORM's way: flip the task if it is active, then save the judgment.
    assert Assignment.objects.filter(pk=by_orm.pk, status=ACTIVE).update(status=DONE) == 1
    expected = judgment(by_orm)
    expected.save()
    by_sql = services.next_assignment(study=study, rater=rater)
    Assignment.objects.filter(pk=by_sql.pk).update(status=ACTIVE)
    new = judgment(by_sql)
    judgment_id = hot_path.insert_judgment_if_active(new)
    assert judgment_id is not None
    saved = Judgment.objects.get(pk=judgment_id)
    loaded = Judgment.objects.get(pk=expected.pk)
    differs = {"assignment_id", "created_at"}
    assert _values(saved, set(names) - differs) == _values(loaded, set(names) - differs)
    assert saved.assignment_id == by_sql.pk and saved.created_at == new.created_at
    assert Assignment.objects.get(pk=by_sql.pk).status == DONE
    # Not active any more: neither flipped nor inserted (the ORM's update also finds nothing).
    assert hot_path.insert_judgment_if_active(judgment(by_sql)) is None
    assert Assignment.objects.filter(pk=by_sql.pk, status=ACTIVE).update(status=DONE) == 0
    Assignment.objects.filter(pk=by_sql.pk).update(status=EXPIRED)
    assert hot_path.insert_judgment_if_active(judgment(by_sql)) is None
    assert Judgment.objects.filter(assignment=by_sql).count() == 1
    assert Assignment.objects.get(pk=by_sql.pk).status == EXPIRED


def _mirror_source_by_orm(study: Any, rater: Any) -> list[tuple[Any, ...]]:
    mine = Assignment.objects.filter(rater=rater, comparison__study=study)
    last_two = list(mine.order_by("-id").values_list("id", flat=True)[:2])
    seen = set(Assignment.objects.filter(rater=rater).values_list("comparison_id", flat=True))
    found = []
    for a in mine.filter(comparison__kind=REAL, status=DONE).exclude(id__in=last_two):
        c = a.comparison
        mirror = c.mirrors.filter(kind=MIRROR).values_list("id", flat=True).first()
        if mirror is None or mirror not in seen:
            found.append(
                (a.left_is_a, c.id, c.pair_id, c.prompt_id, c.video_a_id, c.video_b_id)
                + (c.shown_a_id, c.shown_b_id, mirror)
            )
    return found


def _check_mirror_source_matches_the_orm() -> None:
    study = build_study(prompts=4, min_watch_ms=0)
    rater = qualified_rater()

    def source() -> Any:
        return hot_path.mirror_source_row(study_id=study.pk, rater_id=rater.pk)

    for done in range(4):
        expected = _mirror_source_by_orm(study, rater)
        assert (source() is None) == (not expected)
        assert source() is None or source() in expected
        assert len(expected) == max(0, done - 2)
        judge(services.next_assignment(study=study, rater=rater))
    first = _mirror_source_by_orm(study, rater)
    assert len(first) == 2 and source() in first
    original = Comparison.objects.get(pk=first[0][1])
    mirror = Comparison.objects.create(
        study=study,
        pair=original.pair,
        kind=MIRROR,
        prompt=original.prompt,
        video_a=original.video_a,
        video_b=original.video_b,
        mirror_of=original,
    )
    expected = _mirror_source_by_orm(study, rater)
    assert (*first[0][:-1], mirror.pk) in expected and source() in expected
    # Seen: its original is left out (and the repeat, now the latest task, lets an older one in).
    Assignment.objects.create(comparison=mirror, rater=rater, status=DONE, left_is_a=True)
    expected = _mirror_source_by_orm(study, rater)
    assert original.pk not in [row[1] for row in expected] and len(expected) == 2
    for _ in range(5):
        assert source() in expected


def _check_task_payload_matches_the_orm() -> None:
    study = build_study(prompts=2, raters_per_pair=1, gold_comparisons=1, gold_rate=0.0)
    rater = qualified_rater()
    gold = Comparison.objects.get(study=study, kind=GOLD)
    for comparison in (Comparison.objects.filter(study=study).first(), gold):
        assignment = Assignment.objects.create(
            comparison=comparison, rater=rater, left_is_a=comparison.pk % 2 == 0
        )
        row = hot_path.payload_row(assignment.pk)
        assert row is not None
        token, left_is_a, gold_clip_id, prompt, fps_a, fps_b, poster_a, poster_b, gold_poster = row
        assert (token, left_is_a) == (str(assignment.token), assignment.left_is_a)
        assert (gold_clip_id, prompt) == (comparison.gold_clip_id, comparison.prompt.text)
        assert (fps_a, fps_b) == (comparison.video_a.fps, comparison.video_b.fps)
        assert (poster_a, poster_b) == (comparison.video_a.poster, comparison.video_b.poster)
        clip = comparison.gold_clip
        assert gold_poster == (clip.poster.name if clip else None)
        for prefix in ("/", "/juice/", "/"):  # a site served under a path prefix too
            set_script_prefix(prefix)
            try:
                payload = selectors.task_payload(
                    assignment_id=assignment.pk, study=study, progress={"done": 0, "total": 1}
                )
                for side in ("left", "right"):
                    poster = selectors.clip_file(assignment=assignment, side=side, kind="poster")
                    url = reverse("raters:clip", args=[assignment.token, side, "poster"])
                    assert payload[side]["poster"] == (url if poster else "")
                    assert payload[side]["video"] == reverse(
                        "raters:clip", args=[assignment.token, side, "video"]
                    )
                    assert payload[side]["video"].startswith(f"{prefix}rate/clip/")
            finally:
                set_script_prefix("/")
    assert hot_path.payload_row(10**9) is None


def _check_assignment_for_submit_matches_the_orm() -> None:
    study = build_study(prompts=2, min_watch_ms=0)
    rater, other = qualified_rater(), qualified_rater()
    # A task in another study and one of another rater in this study: not in the state.
    services.next_assignment(study=build_study(prompts=2, slug="s2"), rater=rater)
    services.next_assignment(study=study, rater=other)
    names = [f.attname for f in Assignment._meta.concrete_fields]
    for judged in (False, True):
        task = services.next_assignment(study=study, rater=rater)
        if judged:
            judge(task)
        expected = Assignment.objects.select_related("comparison").get(
            token=task.token, rater=rater
        )
        found = hot_path.assignment_for_submit(token=str(task.token), rater_id=rater.pk)
        assert found is not None
        assignment, comparison, judgment_id, user, state = found
        user_names = [f.attname for f in type(user)._meta.concrete_fields]
        orm_user = type(user).objects.select_related("rater").get(pk=rater.pk)
        assert _values(user, user_names) == _values(orm_user, user_names)
        profile_names = hot_path.PROFILE_FIELDS
        assert _values(user.rater, profile_names) == _values(orm_user.rater, profile_names)
        assert tuple(v or 0 if i else v for i, v in enumerate(state)) == _state_by_orm(study, rater)
        assert _values(assignment, names) == _values(expected, names)
        fields = hot_path.SUBMIT_COMPARISON_FIELDS
        assert _values(comparison, fields) == _values(expected.comparison, fields)
        assert (
            judgment_id
            == Judgment.objects.filter(assignment=expected).values_list("id", flat=True).first()
        )
        assert hot_path.assignment_for_submit(token=str(task.token), rater_id=other.pk) is None
    assert hot_path.assignment_for_submit(token="not-a-uuid", rater_id=rater.pk) is None
    assert hot_path.assignment_for_submit(token=str(uuid.uuid4()), rater_id=rater.pk) is None


def _check_user_with_profile_matches_the_orm() -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    user = UserFactory()
    loaded = hot_path.user_with_profile(user.pk)
    assert loaded is not None and not hasattr(loaded, "rater")
    assert not hasattr(users.objects.select_related("rater").get(pk=user.pk), "rater")
    Rater.objects.create(user=user, is_flagged=True, qualified_at=timezone.now(), quiz_attempts=2)
    user_fields = [f.attname for f in users._meta.concrete_fields]

    raw = hot_path.user_with_profile(user.pk)
    orm = users.objects.select_related("rater").get(pk=user.pk)

    assert _values(raw, user_fields) == _values(orm, user_fields)
    profile_fields = hot_path.PROFILE_FIELDS
    assert _values(raw.rater, profile_fields) == _values(orm.rater, profile_fields)
    assert raw.rater.quiz_attempts == 2  # a field not loaded up front loads on use
    assert hot_path.user_with_profile(user.pk + 1000) is None


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


def _check_assignments_carry_their_comparisons_study_kind_and_prompt() -> None:
    """The copies the state reads equal the comparison's, however the assignment was made:
    real tasks, gold checks and mirrored repeats handed out, and the ORM's create."""
    study = build_study(
        prompts=6, seeds=2, gold_comparisons=3, gold_rate=0.3, mirror_rate=0.3, min_watch_ms=0
    )
    raters = [qualified_rater(), qualified_rater()]
    for _ in range(8):
        for rater in raters:
            task = services.next_assignment(study=study, rater=rater)
            if task is not None:
                judge(task)
    extra = Assignment.objects.create(
        comparison=Comparison.objects.filter(study=study, kind=REAL).last(),
        rater=qualified_rater(),
        left_is_a=True,
    )
    # Moved to another comparison (an admin's form sets the instance): the copies follow.
    extra.comparison = Comparison.objects.filter(study=study, kind=GOLD).first()
    extra.save()
    made = Assignment.objects.filter(comparison__study=study).select_related("comparison")
    assert {a.kind for a in made} == {REAL, GOLD, MIRROR} and extra in made
    for a in made:
        c = a.comparison
        assert (a.study_id, a.kind, a.prompt_id) == (c.study_id, c.kind, c.prompt_id), a.pk


def _check_assignment_for_clip_matches_the_orm() -> None:
    # Videos of unlike frame counts (shown through prepared clips) and a gold comparison.
    study = build_study(prompts=2, raters_per_pair=1, gold_comparisons=1, frames_b=16)
    rater, other = qualified_rater(), qualified_rater()
    comparisons = list(Comparison.objects.filter(study=study).order_by("id"))
    assert any(c.shown_a_id for c in comparisons) and any(c.gold_clip_id for c in comparisons)
    plain = build_study(prompts=1, raters_per_pair=1, slug="plain")
    comparisons += list(Comparison.objects.filter(study=plain))
    assert any(c.shown_a_id is None and c.gold_clip_id is None for c in comparisons)
    related = ("video_a", "video_b", "gold_clip", "shown_a", "shown_b")
    for comparison in comparisons:
        assignment = Assignment.objects.create(
            comparison=comparison, rater=rater, left_is_a=comparison.pk % 2 == 0
        )
        expected = Assignment.objects.select_related(
            *(f"comparison__{name}" for name in related)
        ).get(token=assignment.token, rater_id=rater.pk)
        found = hot_path.assignment_for_clip(token=str(assignment.token), rater_id=rater.pk)
        assert found is not None and found.pk == assignment.pk
        assert found.left_is_a == expected.left_is_a
        for side in ("left", "right"):
            for kind in ("video", "poster"):
                ours = selectors.clip_file(assignment=found, side=side, kind=kind)
                theirs = selectors.clip_file(assignment=expected, side=side, kind=kind)
                assert (ours and ours.name) == (theirs and theirs.name), (side, kind)
        assert hot_path.assignment_for_clip(token=str(assignment.token), rater_id=other.pk) is None
    for token in ("not-a-token", str(uuid.uuid4()), ""):
        assert hot_path.assignment_for_clip(token=token, rater_id=rater.pk) is None


CHECKS = [
    _check_assignments_carry_their_comparisons_study_kind_and_prompt,
    _check_locked_profile_matches_the_orm,
    _check_rater_state_matches_the_orm,
    _check_first_free_claim_matches_the_orm,
    _check_claim_of_one_comparison_matches_the_orm,
    _check_gold_claim_matches_the_orm,
    _check_insert_matches_the_orm,
    _check_judgment_insert_matches_the_orm,
    _check_mirror_source_matches_the_orm,
    _check_task_payload_matches_the_orm,
    _check_assignment_for_clip_matches_the_orm,
    _check_assignment_for_submit_matches_the_orm,
    _check_user_with_profile_matches_the_orm,
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
