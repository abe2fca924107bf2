"""Blinding and isolation: nothing names a variant; nobody reaches another rater's work."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from raters import services
from raters.models import Comparison
from tests.raters.helpers import build_study, judge, qualified_rater

pytestmark = pytest.mark.django_db


def _session(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _secrets(study) -> list[str]:  # type: ignore[no-untyped-def]
    """Every string that would give a variant, a model, a batch or a stored file away."""
    words = [study.batches.get().name, study.name]
    for pair in study.pairs.all():
        for variant in (pair.variant_a, pair.variant_b):
            words += [variant.name, variant.slug]
    for comparison in study.comparisons.all():
        for video in (comparison.video_a, comparison.video_b):
            words += [video.file.name, video.file.name.rsplit("/", 1)[-1]]
            words += [video.poster.name.rsplit("/", 1)[-1]]
        if comparison.gold_clip:
            words += [comparison.gold_clip.file.name.rsplit("/", 1)[-1], "gold", "degrad"]
    return [w for w in words if w]


def _assert_blind(text: str, headers: dict[str, str], study) -> None:  # type: ignore[no-untyped-def]
    everything = (text + json.dumps(headers)).lower()
    for word in _secrets(study):
        assert word.lower() not in everything, word
    assert "content-disposition" not in {k.lower() for k in headers}


def test_page_source_json_clip_urls_and_headers_name_no_variant():
    study = build_study(prompts=2, gold_rate=0.5)
    services.build_gold_comparisons(study=study, count=1)
    rater = qualified_rater()
    client = _session(rater)
    page = client.get(f"/rate/{study.slug}/")
    assert page.status_code == 200
    _assert_blind(page.content.decode(), dict(page.headers), study)
    task = client.post(f"/api/studies/{study.slug}/next/")
    _assert_blind(task.content.decode(), dict(task.headers), study)
    for url in ("/api/studies/", f"/api/studies/{study.slug}/", "/api/raters/me/"):
        listing = client.get(url)
        _assert_blind(listing.content.decode(), dict(listing.headers), study)
    for page_url in (f"/rate/{study.slug}/instructions/", "/rate/"):
        other = client.get(page_url, follow=True)
        _assert_blind(other.content.decode(), dict(other.headers), study)
    data = task.json()
    for side in ("left", "right"):
        for kind in ("video", "poster"):
            response = client.get(data[side][kind])
            assert response.status_code == 200
            _assert_blind(data[side][kind], dict(response.headers), study)
    # The gold comparison (first task at gold_rate 0.5) looks like any other.
    assert study.comparisons.filter(kind=Comparison.Kind.GOLD).count() == 1


def test_video_is_served_in_byte_ranges_without_reading_it_whole():
    study = build_study(prompts=1)
    client = _session(qualified_rater())
    data = client.post(f"/api/studies/{study.slug}/next/").json()
    whole = client.get(data["left"]["video"])
    body = b"".join(whole.streaming_content)
    assert whole["Accept-Ranges"] == "bytes" and int(whole["Content-Length"]) == len(body)
    assert body[4:8] == b"ftyp"
    part = client.get(data["left"]["video"], HTTP_RANGE="bytes=4-11")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 4-11/{len(body)}"
    assert b"".join(part.streaming_content) == body[4:12]
    tail = client.get(data["left"]["video"], HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == body[-10:]
    beyond = client.get(data["left"]["video"], HTTP_RANGE=f"bytes={len(body) + 5}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(body)}"


def test_another_raters_assignment_video_and_judgment_are_out_of_reach():
    study = build_study(prompts=2, raters_per_pair=2, min_watch_ms=0)
    owner, intruder = qualified_rater(), qualified_rater()
    owner_client = _session(owner)
    data = owner_client.post(f"/api/studies/{study.slug}/next/").json()
    intruder_client = _session(intruder)
    for side in ("left", "right"):
        assert intruder_client.get(data[side]["video"]).status_code == 404
        assert intruder_client.get(data[side]["poster"]).status_code == 404
    assert Client().get(data["left"]["video"]).status_code == 403

    api = APIClient()
    api.force_authenticate(intruder)
    stolen = api.post(
        "/api/judgments/",
        {
            "token": data["token"],
            "quality": "left",
            "quality_reasons": ["pixel_sharpness"],
            "faithfulness": "left",
            "faithfulness_reasons": ["spatial_alignment"],
            "watch_ms": 5000,
            "played_through": True,
        },
        format="json",
    )
    assert stolen.status_code == 404
    judge(services.next_assignment(study=study, rater=owner))
    assert api.get("/api/judgments/").json()["count"] == 0


def test_clip_urls_accept_script_tokens_for_their_owner_only():
    study = build_study(prompts=1)
    owner = qualified_rater()
    api = APIClient()
    token = api.post(
        "/api/auth/token/", {"username": owner.username, "password": "pw-for-tests"}
    ).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    data = api.post(f"/api/studies/{study.slug}/next/").json()
    assert api.get(data["left"]["video"]).status_code == 200
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert other.get(data["left"]["video"]).status_code == 403
