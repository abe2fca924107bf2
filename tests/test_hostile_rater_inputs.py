"""Whatever a rater (or anyone) sends to the crowd start link, a clip, a login endpoint or the
judgment API, the answer is a readable 4xx or a success, never a 5xx.

The property tests run on the embedded database; the ones marked `services` repeat the inputs
that only PostgreSQL refuses (a NUL in text) against the real server.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raters import services
from raters.models import Rater
from tests.factories import UserFactory
from tests.raters.helpers import build_study, qualified_rater

NESTED = "[" * 3000 + "]" * 3000  # 6 KB of nesting: Python's json gives up at ~1,000 levels
HOSTILE_TEXT = st.text(max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "x" * 250, "\u202e", "%00", "'; DROP TABLE x; --", "=1+1", " "]
)


@pytest.fixture(autouse=True)
def _fresh_cache():  # type: ignore[no-untyped-def]
    cache.clear()
    yield
    cache.clear()


def _no_server_error(response, where: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, f"{where} -> {response.status_code}"
    body = response.content.decode("utf-8", "replace") if not response.streaming else ""
    assert "Traceback" not in body, where


# --- The three inputs that gave a 500 ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/judgments/"])
def test_deeply_nested_json_is_a_400_with_a_message(path):
    client = Client()
    client.force_login(qualified_rater())
    response = client.post(path, NESTED, content_type="application/json")
    assert response.status_code == 400, response.status_code
    assert "nested" in response.json()["detail"]


@pytest.mark.django_db
def test_ordinary_json_still_parses():
    UserFactory(username="plain")
    response = Client().post(
        "/api/auth/token/",
        json.dumps({"username": "plain", "password": "pw-for-tests", "extra": [[{"a": [1]}]]}),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["token"]


def _nul_start_link_is_refused() -> None:
    study = build_study(prompts=1)
    for method in ("get", "post"):  # the page, and its Start button
        response = getattr(Client(), method)(f"/rate/start/{study.slug}/?PROLIFIC_PID=a%00b")
        assert response.status_code == 400
        assert "worker id" in response.content.decode().lower()
    assert not Rater.objects.filter(external_id__contains="a").exists()


@pytest.mark.django_db
def test_a_nul_in_the_worker_id_is_a_400():
    _nul_start_link_is_refused()


@pytest.mark.services
@pytest.mark.django_db
def test_a_nul_in_the_worker_id_is_a_400_on_postgresql():
    # PostgreSQL text cannot hold a NUL: it used to surface as a DataError (500).
    _nul_start_link_is_refused()


@pytest.mark.django_db
@pytest.mark.parametrize("worker_id", ['=HYPERLINK("http://x","pay")', "+1", "-1+1", "@SUM(A1)"])
def test_a_worker_id_that_a_spreadsheet_would_run_as_a_formula_is_a_400(worker_id):  # type: ignore[no-untyped-def]
    # Worker ids land in the pay and completion files, which staff open in spreadsheets.
    from urllib.parse import quote

    study = build_study(prompts=1)
    response = Client().post(f"/rate/start/{study.slug}/?PROLIFIC_PID={quote(worker_id)}")
    assert response.status_code == 400 and "worker id" in response.content.decode().lower()
    assert not Rater.objects.exists()


def _clip_client():  # type: ignore[no-untyped-def]
    study = build_study(prompts=1)
    rater = qualified_rater()
    assignment = services.next_assignment(study=study, rater=rater)
    client = Client()
    client.force_login(rater)
    return client, f"/rate/clip/{assignment.token}/left/video"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000]
)
def test_an_absurd_range_is_a_416(header):
    client, url = _clip_client()
    response = client.get(url, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"].startswith("bytes */")


@pytest.mark.django_db
def test_ordinary_ranges_still_work():
    client, url = _clip_client()
    whole = client.get(url)
    size = int(whole["Content-Length"])
    assert client.get(url, HTTP_RANGE="bytes=0-").status_code == 206
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert (
        tail.status_code == 206 and tail["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    )
    # A very long but in-range end is clamped to the file, as before
    assert client.get(url, HTTP_RANGE="bytes=0-" + "9" * 15).status_code == 206


# --- Property tests: generated input, no 5xx --------------------------------------------------


@pytest.mark.django_db
def test_crowd_start_link_never_answers_5xx():
    study = build_study(prompts=1)

    @settings(max_examples=60, deadline=None, database=None)
    @given(pid=HOSTILE_TEXT, extra=st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3))
    def run(pid: str, extra: dict[str, str]) -> None:
        query = urlencode({**extra, "PROLIFIC_PID": pid})
        for method in ("get", "post"):
            response = getattr(Client(), method)(f"/rate/start/{study.slug}/?{query}")
            _no_server_error(response, f"{method} start {query!r}")

    run()


@st.composite
def range_headers(draw) -> str:  # type: ignore[no-untyped-def]
    number = st.integers(min_value=0, max_value=10**40).map(str) | st.just("")
    if draw(st.booleans()):
        return f"bytes={draw(number)}-{draw(number)}"
    return draw(st.text(max_size=30) | st.sampled_from(["bytes=", "bytes=-", "bytes=1-2,3-4"]))


@pytest.mark.django_db
def test_clip_range_handler_never_answers_5xx():
    client, url = _clip_client()

    @settings(max_examples=80, deadline=None, database=None)
    @given(header=range_headers())
    def run(header: str) -> None:
        response = client.get(url, HTTP_RANGE=header)
        _no_server_error(response, f"Range {header!r}")
        assert response.status_code in (200, 206, 416), (header, response.status_code)

    run()


BODIES = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3).map(lambda d: urlencode(d).encode()),
    st.recursive(
        st.none() | st.booleans() | st.integers() | HOSTILE_TEXT,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3)
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=4000).map(lambda n: b"[" * n + b"]" * n),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "*/*",
        "text/plain",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "application/json; charset=utf-8",
    ]
)


@pytest.mark.django_db
@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/api/auth/token/", "/accounts/login/", "/admin/login/"]),
    body=BODIES,
    content_type=CONTENT_TYPES,
)
def test_login_endpoints_never_answer_5xx(path, body, content_type):
    response = Client().post(path, body, content_type=content_type)
    _no_server_error(response, f"{path} {content_type} {body[:60]!r}")


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_judgment_api_never_answers_5xx(body, content_type):
    user = UserFactory(username="fuzz-judge")
    client = Client()
    client.force_login(user)
    response = client.post("/api/judgments/", body, content_type=content_type)
    _no_server_error(response, f"judgments {content_type} {body[:60]!r}")
