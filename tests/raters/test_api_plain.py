"""The rating page's two POSTs answer the same through raters.api_plain as through DRF's views.

Each kind of request (a claim, a repeat, nothing left, unknown study or token, a refusal, a
signed-out session, a submit the services refuse, one the quick check leaves to DRF) is sent
once through the plain path and once with it switched off, each in a transaction rolled back
afterwards, from the same rows; the status, the headers a client reads and the body must be
the same (the task's random token and the judgment's id aside). Runs on SQLite here and on
PostgreSQL in the `services` pass.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.views import APIView

from raters import api_plain
from raters.serializers import JudgmentInputSerializer
from tests.raters.helpers import build_study, judgment_body, qualified_rater

HEADERS = ("Content-Type", "Allow", "Vary", "WWW-Authenticate", "Retry-After")


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _next(client: Client, slug: str) -> Any:
    return client.post(f"/api/studies/{slug}/next/", content_type="application/json")


def _submit(client: Client, body: Any) -> Any:
    return client.post("/api/judgments/", body, content_type="application/json")


def _claimed(client: Client, slug: str) -> str:
    answer = _next(client, slug)
    assert answer.status_code == 200
    return str(answer.json()["token"])


# Each scenario sets up its rows (kept) and returns the request to send both ways.
Scenario = Callable[[], Callable[[], Any]]


def _next_claims() -> Callable[[], Any]:
    study, client = build_study(prompts=2, slug="claims"), _client(qualified_rater())
    return lambda: _next(client, study.slug)


def _next_repeats_the_open_task() -> Callable[[], Any]:
    study, client = build_study(prompts=2, slug="repeats"), _client(qualified_rater())
    _claimed(client, study.slug)
    return lambda: _next(client, study.slug)


def _next_with_nothing_left() -> Callable[[], Any]:
    study = build_study(prompts=1, raters_per_pair=1, slug="empty")
    client = _client(qualified_rater())
    assert _submit(client, judgment_body(_claimed(client, study.slug))).status_code == 201
    return lambda: _next(client, study.slug)


def _next_on_an_unknown_study() -> Callable[[], Any]:
    client = _client(qualified_rater())
    return lambda: _next(client, "no-such-study")


def _next_unqualified() -> Callable[[], Any]:
    from tests.factories import UserFactory

    study = build_study(prompts=2, slug="quiz", require_qualification=True)
    client = _client(UserFactory())
    return lambda: _next(client, study.slug)


def _next_deactivated() -> Callable[[], Any]:
    study, user = build_study(prompts=2, slug="gone"), qualified_rater()
    client = _client(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    return lambda: _next(client, study.slug)


def _submit_records() -> Callable[[], Any]:
    study, client = build_study(prompts=2, slug="records"), _client(qualified_rater())
    token = _claimed(client, study.slug)
    return lambda: _submit(client, judgment_body(token))


def _submit_repeated() -> Callable[[], Any]:
    study, client = build_study(prompts=2, slug="again"), _client(qualified_rater())
    token = _claimed(client, study.slug)
    assert _submit(client, judgment_body(token)).status_code == 201
    return lambda: _submit(client, judgment_body(token))


def _submit_another_raters_token() -> Callable[[], Any]:
    study = build_study(prompts=2, slug="theirs")
    token = _claimed(_client(qualified_rater()), study.slug)
    client = _client(qualified_rater())
    return lambda: _submit(client, judgment_body(token))


def _submit_reasons_of_another_choice() -> Callable[[], Any]:
    study, client = build_study(prompts=2, slug="reasons"), _client(qualified_rater())
    token = _claimed(client, study.slug)
    return lambda: _submit(client, judgment_body(token, quality_reasons=["equally_bad"]))


def _submit_watched_too_little() -> Callable[[], Any]:
    study = build_study(prompts=2, slug="short", min_watch_ms=60_000)
    client = _client(qualified_rater())
    token = _claimed(client, study.slug)
    return lambda: _submit(client, judgment_body(token, watch_ms=10, played_through=False))


def _submit_deactivated() -> Callable[[], Any]:
    study, user = build_study(prompts=2, slug="left"), qualified_rater()
    client = _client(user)
    token = _claimed(client, study.slug)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    return lambda: _submit(client, judgment_body(token))


def _submit_malformed() -> Callable[[], Any]:  # the quick check leaves it to DRF
    study, client = build_study(prompts=2, slug="malformed"), _client(qualified_rater())
    token = _claimed(client, study.slug)
    return lambda: _submit(client, judgment_body(token, quality="up", watch_ms="12"))


PLAIN = [
    _next_claims,
    _next_repeats_the_open_task,
    _next_with_nothing_left,
    _next_on_an_unknown_study,
    _next_unqualified,
    _next_deactivated,
    _submit_records,
    _submit_repeated,
    _submit_another_raters_token,
    _submit_reasons_of_another_choice,
    _submit_watched_too_little,
    _submit_deactivated,
]
SCENARIOS = [*PLAIN, _submit_malformed]


def _seen(response: Any) -> tuple[int, dict[str, str], Any]:
    """What a client reads: status, headers, body (the task's token and judgment id named)."""
    text = response.content.decode()
    body = json.loads(text) if text else None
    if isinstance(body, dict):
        if "token" in body:
            text = text.replace(body["token"], "TOKEN")
        if "id" in body:
            text = text.replace(f'"id":{body["id"]}', '"id":ID')
    headers = {name: response[name] for name in HEADERS if response.has_header(name)}
    return response.status_code, headers, text


def _both_ways(request: Callable[[], Any], monkeypatch: Any) -> tuple[Any, Any, int]:
    """`request` answered through the plain path and through DRF, each rolled back; and how
    many times DRF's views ran on the plain path's turn."""
    dispatched = []
    dispatch = APIView.dispatch

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        dispatched.append(type(self).__name__)
        return dispatch(self, *args, **kwargs)

    seen = []
    for plain in (True, False):
        with monkeypatch.context() as patch:
            if plain:
                patch.setattr(APIView, "dispatch", counting)
            else:
                patch.setattr(api_plain, "_rating_page_user", lambda request: None)
            with transaction.atomic():
                seen.append(_seen(request()))
                transaction.set_rollback(True)
    return seen[0], seen[1], len(dispatched)


def _check_same_answer(scenario: Scenario, monkeypatch: Any) -> None:
    plain, drf, dispatched = _both_ways(scenario(), monkeypatch)
    assert plain == drf
    assert dispatched == (0 if scenario in PLAIN else 1)


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.strip("_"))
def test_same_answer_on_the_default_database(scenario, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _check_same_answer(scenario, monkeypatch)


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.strip("_"))
def test_same_answer_on_postgresql(scenario, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _check_same_answer(scenario, monkeypatch)


@pytest.mark.django_db
def test_the_scenarios_give_the_answers_they_are_named_for(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The comparison above is worth something only if the scenarios reach these answers."""
    statuses = {s.__name__.strip("_"): _both_ways(s(), monkeypatch)[0][0] for s in SCENARIOS}
    assert statuses == {
        "next_claims": 200,
        "next_repeats_the_open_task": 200,
        "next_with_nothing_left": 204,
        "next_on_an_unknown_study": 404,
        "next_unqualified": 403,
        "next_deactivated": 403,
        "submit_records": 201,
        "submit_repeated": 200,
        "submit_another_raters_token": 404,
        "submit_reasons_of_another_choice": 400,
        "submit_watched_too_little": 400,
        "submit_deactivated": 403,
        "submit_malformed": 400,
    }


@pytest.mark.django_db
def test_other_clients_and_failed_checks_go_to_drf(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Token clients, a missing CSRF token, another Accept header: DRF's views answer them."""
    from rest_framework.authtoken.models import Token

    study, user = build_study(prompts=3, slug="others"), qualified_rater()
    dispatched = []
    dispatch = APIView.dispatch

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        dispatched.append(1)
        return dispatch(self, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", counting)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    refused = _next(browser, study.slug)
    assert refused.status_code == 403 and refused.json()["detail"].startswith("CSRF Failed")
    assert len(dispatched) == 1
    browser.get(f"/rate/{study.slug}/")  # the rating page sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    answer = browser.post(
        f"/api/studies/{study.slug}/next/", content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert answer.status_code == 200 and len(dispatched) == 1  # the plain path: no DRF

    token = Token.objects.create(user=qualified_rater())
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert _next(api, study.slug).status_code == 200 and len(dispatched) == 2
    html = _client(user).post(
        f"/api/studies/{study.slug}/next/", content_type="application/json", HTTP_ACCEPT="text/html"
    )
    assert html.status_code == 200 and len(dispatched) == 3
    assert html["Content-Type"].startswith("text/html")  # DRF's browsable API
    assert answer.json()["token"] in html.content.decode()  # the same open task


# Inputs around every field's edges: the quick check must take a form exactly as the
# serializer does, or leave it to the serializer (None).
_TOKEN = str(uuid.uuid4())
INPUTS: list[Any] = [
    judgment_body(_TOKEN),
    judgment_body(_TOKEN, quality="tie", quality_reasons=["equally_good", "equally_bad"]),
    judgment_body(_TOKEN.upper().replace("-", "")),
    judgment_body("{" + _TOKEN + "}"),
    judgment_body("urn:uuid:" + _TOKEN),
    {"token": _TOKEN, "quality": "right", "faithfulness": "left"},  # the rest take defaults
    {**judgment_body(_TOKEN), "extra": [1, 2], "replays": 3, "seeks": 0},
    judgment_body(_TOKEN, quality_reasons=["motion_smoothness"] * 10),
    judgment_body(_TOKEN, time_spent_ms=86_400_000, watch_ms=0),
    # ... and forms the quick check leaves to the serializer (taken or refused there)
    judgment_body(_TOKEN, quality_reasons=["motion_smoothness"] * 11),
    judgment_body(_TOKEN, quality_reasons=[" motion_smoothness"]),
    judgment_body(_TOKEN, quality_reasons=["something else"]),
    judgment_body(_TOKEN, quality_reasons=None),
    judgment_body(_TOKEN, quality_reasons="motion_smoothness"),
    judgment_body(_TOKEN, faithfulness_reasons=[1]),
    judgment_body(_TOKEN, quality="LEFT"),
    judgment_body(_TOKEN, quality=None),
    judgment_body(_TOKEN, faithfulness=["left"]),
    judgment_body(_TOKEN, watch_ms="2500"),
    judgment_body(_TOKEN, watch_ms=2500.0),
    judgment_body(_TOKEN, watch_ms=True),
    judgment_body(_TOKEN, watch_ms=-1),
    judgment_body(_TOKEN, watch_ms=86_400_001),
    judgment_body(_TOKEN, replays=100_001),
    judgment_body(_TOKEN, played_through="true"),
    judgment_body(_TOKEN, played_through=1),
    judgment_body(_TOKEN, played_through=None),
    judgment_body(_TOKEN[:-1]),
    judgment_body(int(uuid.UUID(_TOKEN))),
    judgment_body(None),
    {k: v for k, v in judgment_body(_TOKEN).items() if k != "token"},
    {k: v for k, v in judgment_body(_TOKEN).items() if k != "faithfulness"},
    [judgment_body(_TOKEN)],
    "x",
    None,
]


def test_the_quick_check_takes_a_form_exactly_as_the_serializer_does() -> None:
    taken = 0
    for data in INPUTS:
        quick = api_plain.judgment_input(data)
        if quick is None:
            continue
        taken += 1
        serializer = JudgmentInputSerializer(data=data)
        assert serializer.is_valid(), (data, serializer.errors)
        assert quick == dict(serializer.validated_data), data
        assert [type(v) for v in quick.values()] == [
            type(serializer.validated_data[k]) for k in quick
        ]
    assert taken == 9  # the plain forms above; every other one is the serializer's


def test_a_body_the_json_parser_would_not_read_as_it_is_goes_to_drf(rf) -> None:  # type: ignore[no-untyped-def]
    def body(content: bytes, content_type: str = "application/json") -> Any:
        request = rf.post("/api/judgments/", content, content_type=content_type)
        return api_plain._json_body(request)

    assert body(b'{"a": [1]}') == {"a": [1]}
    assert body(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert body(b'{"a": 1}', "application/json; charset=latin-1") is None
    assert body(b'{"a": 1}', "text/plain") is None
    assert body(b'{"a": NaN}') is None
    assert body(b'{"a": ') is None
    assert body(b"\xff") is None
    assert body(b"[" * 40 + b"]" * 40) is None
