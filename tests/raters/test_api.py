"""The API contract that pages and simulated raters rely on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from raters import services
from raters.models import Assignment, Judgment
from tests.factories import StaffFactory, UserFactory
from tests.raters.helpers import build_study, qualified_rater
from tests.raters.helpers import judgment_body as _body

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": user.username, "password": "pw-for-tests"}
    )
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def _age(token: str) -> None:
    # The server checks that the watch time really passed since the task was handed out.
    Assignment.objects.filter(token=token).update(
        created_at=Assignment.objects.get(token=token).created_at - timedelta(seconds=10)
    )


def test_next_submit_and_finish_over_token_auth():
    study = build_study(prompts=2, raters_per_pair=1, min_watch_ms=2000)
    client = _client(qualified_rater())
    task = client.post(f"/api/studies/{study.slug}/next/")
    assert task.status_code == 200
    data = task.json()
    assert set(data) >= {"token", "prompt", "left", "right", "progress", "allow_ties"}
    assert data["progress"] == {"done": 0, "total": 2}
    assert client.post(f"/api/studies/{study.slug}/next/").json()["token"] == data["token"]

    too_fast = client.post("/api/judgments/", _body(data["token"]), format="json")
    assert too_fast.status_code == 400 and "watch_ms" in too_fast.json()
    _age(data["token"])
    created = client.post("/api/judgments/", _body(data["token"]), format="json")
    assert created.status_code == 201
    assert created.json()["progress"]["done"] == 1
    repeat = client.post("/api/judgments/", _body(data["token"]), format="json")
    assert repeat.status_code == 200 and repeat.json()["id"] == created.json()["id"]
    assert Judgment.objects.count() == 1

    second = client.post(f"/api/studies/{study.slug}/next/").json()
    _age(second["token"])
    assert client.post("/api/judgments/", _body(second["token"]), format="json").status_code == 201
    assert client.post(f"/api/studies/{study.slug}/next/").status_code == 204
    detail = client.get(f"/api/studies/{study.slug}/").json()
    assert detail["finished"] and detail["completion_code"] == study.completion_code
    me = client.get("/api/raters/me/").json()
    assert me["judgments"] == 2 and me["qualified"]


def test_invalid_judgments_come_back_as_400_with_field_messages():
    study = build_study(prompts=1, min_watch_ms=0)
    client = _client(qualified_rater())
    token = client.post(f"/api/studies/{study.slug}/next/").json()["token"]
    bad_shape = client.post(
        "/api/judgments/", _body(token, quality="up", replays=-1), format="json"
    )
    assert bad_shape.status_code == 400
    assert {"quality", "replays"} <= set(bad_shape.json())
    no_reason = client.post("/api/judgments/", _body(token, quality_reasons=[]), format="json")
    assert no_reason.status_code == 400
    assert "at least one reason" in no_reason.json()["quality_reasons"][0]
    not_watched = client.post("/api/judgments/", _body(token, played_through=False), format="json")
    assert not_watched.status_code == 400 and "played_through" in not_watched.json()


def test_unqualified_and_stopped_raters_get_403_with_a_readable_detail():
    study = build_study(prompts=1, require_qualification=True)
    newcomer = UserFactory()
    client = _client(newcomer)
    refused = client.post(f"/api/studies/{study.slug}/next/")
    assert refused.status_code == 403 and "quiz" in refused.json()["detail"]
    services.qualify_rater(user=newcomer)
    services.stop_rater(rater=newcomer.rater, reason="gold")
    stopped = client.post(f"/api/studies/{study.slug}/next/")
    assert stopped.status_code == 403 and stopped.json()["code"] == "stopped"
    # The screen-out code is for a failed quiz, not for failing quality control.
    assert "screenout_code" not in stopped.json()


def test_raters_list_only_their_own_judgments_in_left_right_terms_staff_see_all():
    study = build_study(prompts=2, raters_per_pair=2, min_watch_ms=0)
    one, two = qualified_rater(), qualified_rater()
    for rater in (one, two):
        client = _client(rater)
        token = client.post(f"/api/studies/{study.slug}/next/").json()["token"]
        assert client.post("/api/judgments/", _body(token), format="json").status_code == 201
    mine = _client(one).get("/api/judgments/").json()
    assert mine["count"] == 1
    assert mine["results"][0]["quality"] == "left" and "left_is_a" not in mine["results"][0]
    staff = _client(StaffFactory())
    everything = staff.get("/api/judgments/").json()
    assert everything["count"] == 2 and {"quality", "left_is_a"} <= set(everything["results"][0])
    comparisons = staff.get("/api/comparisons/").json()
    assert comparisons["count"] == 2 and "variant_a" in comparisons["results"][0]
    assert _client(one).get("/api/comparisons/").status_code == 403
    assert len(_client(one).get("/api/studies/").json()) == 1


def test_a_submit_reports_the_progress_a_fresh_count_gives(settings):
    """The submit's progress comes from the rater's state read with its task, before the
    judgment is written: it must still equal a count made afterwards, whether the task went
    from open to done, was answered again, or had expired and was taken back."""
    from raters import selectors

    settings.JUICE_PROGRESS_CACHE_SECONDS = 60  # the same study-wide room for both counts
    study = build_study(prompts=5, raters_per_pair=2, min_watch_ms=0)
    rater = qualified_rater()
    client = APIClient()
    client.force_login(rater)
    for late in (False, True, False):
        token = client.post(f"/api/studies/{study.slug}/next/").json()["token"]
        if late:
            Assignment.objects.filter(token=token).update(status=Assignment.Status.EXPIRED)
        for _repeat in range(2):
            sent = client.post("/api/judgments/", _body(token), format="json")
            assert sent.status_code in (200, 201)
            assert sent.json()["progress"] == selectors.rater_progress(study=study, rater=rater)
    assert sent.json()["progress"]["done"] == 3


def test_judgment_input_serializers_do_not_share_bound_fields():
    """The input serializer copies its declared fields shallowly (for speed): each instance
    still gets its own fields, bound to it, and the declared ones stay unbound."""
    from raters.serializers import JudgmentInputSerializer

    good = JudgmentInputSerializer(data=_body("6f1c3e4a-0000-4000-8000-000000000000"))
    bad = JudgmentInputSerializer(data=_body("not-a-token", quality="up", watch_ms=-1))
    assert not bad.is_valid() and set(bad.errors) == {"token", "quality", "watch_ms"}
    assert good.is_valid(), good.errors
    for name, field in good.fields.items():
        assert field.parent is good and bad.fields[name].parent is bad
        assert field is not JudgmentInputSerializer._declared_fields[name]
    assert JudgmentInputSerializer._declared_fields["token"].parent is None


def test_openapi_schema_and_auth_required():
    assert APIClient().post("/api/studies/x/next/").status_code in (401, 403)
    schema = _client(qualified_rater()).get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/judgments/" in text and "/api/studies/{slug}/next/" in text


def _round_trip_queries(settings) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Statements of next and of submit, in a third round (none may grow with the rounds).
    Here the session comes from the database (production: the Redis cache), and the test's
    own transaction turns each transaction of the code into a counted savepoint pair."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.JUICE_EXPIRY_SWEEP_SECONDS = 60
    settings.JUICE_PROGRESS_CACHE_SECONDS = 60
    settings.JUICE_STUDY_CACHE_SECONDS = 60
    study = build_study(prompts=6, raters_per_pair=2)
    client = APIClient()  # signed in as a browser is: the session, not a token
    client.force_login(qualified_rater())
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as next_queries:
            task = client.post(f"/api/studies/{study.slug}/next/").json()
        _age(task["token"])
        with CaptureQueriesContext(connection) as submit_queries:
            sent = client.post("/api/judgments/", _body(task["token"]), format="json")
            assert sent.status_code == 201
        counts.append((len(next_queries), len(submit_queries)))
    # Later rounds reuse the sweep and the study-wide count.
    print("queries per (next, submit):", counts)
    assert counts[1] == counts[2], counts
    return counts[2]


def test_rating_round_trip_stays_within_a_fixed_number_of_queries(settings):
    """next: session, savepoint, profile lock with the user, rater's state, claim (pick +
    count), insert, page, release. submit: session, assignment with the user and the rater's
    state, savepoint, flip to done, judgment, release (SQLite: no statement that writes and
    reads at once)."""
    assert _round_trip_queries(settings) <= (8, 6)


@pytest.mark.services
def test_rating_round_trip_on_postgresql_merges_statements(settings):
    """On PostgreSQL a new task's insert returns its page (next: 7 with the savepoint pair),
    and a submit flips its task and inserts the judgment in one statement outside any
    transaction (submit: session, assignment with the user and the rater's state, flip +
    judgment)."""
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert _round_trip_queries(settings) == (7, 3)


def test_a_missing_choice_names_its_question_once():
    study = build_study(prompts=1, min_watch_ms=0)
    client = _client(qualified_rater())
    token = client.post(f"/api/studies/{study.slug}/next/").json()["token"]
    # What the page sends on Enter with nothing chosen
    empty = client.post("/api/judgments/", _body(token, quality="", faithfulness=""), format="json")
    assert empty.status_code == 400
    errors = empty.json()
    assert errors["quality"] == [
        "Quality (Which video do you prefer?): choose the left video, the right video or a tie."
    ]
    assert errors["faithfulness"][0].startswith("Faithfulness (Which video aligns better")
    missing = client.post("/api/judgments/", {"token": token}, format="json").json()
    assert missing["quality"] == errors["quality"]


def test_the_watch_minimum_the_page_unlocks_on_is_the_one_the_server_enforces():
    # Given a study whose minimum is 2.0 s: the task carries that number
    study = build_study(prompts=2, raters_per_pair=1, min_watch_ms=2000)
    client = _client(qualified_rater())
    task = client.post(f"/api/studies/{study.slug}/next/").json()
    assert task["min_watch_ms"] == study.min_watch_ms == 2000
    _age(task["token"])
    # At the boundary: 1 ms short is refused, exactly the minimum is accepted
    short = client.post("/api/judgments/", _body(task["token"], watch_ms=1999), format="json")
    assert short.status_code == 400 and "2 s" in short.json()["watch_ms"][0]
    exact = client.post("/api/judgments/", _body(task["token"], watch_ms=2000), format="json")
    assert exact.status_code == 201
