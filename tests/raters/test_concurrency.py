"""Many raters at once on PostgreSQL: row locks + unique constraints never over-assign."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from raters.models import Assignment, Comparison, Judgment
from tests.raters.helpers import build_study, qualified_rater

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RATERS = 52
K = 5


def _rate_until_done(user, slug: str, start: threading.Barrier, errors: list) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    try:
        start.wait()
        while True:
            task = client.post(f"/api/studies/{slug}/next/")
            if task.status_code == 204:
                return
            assert task.status_code == 200, task.content
            token = task.json()["token"]
            body = {
                "token": token,
                "quality": "left",
                "quality_reasons": ["pixel_sharpness"],
                "faithfulness": "right",
                "faithfulness_reasons": ["temporal_alignment"],
                "watch_ms": 10,
                "played_through": True,
            }
            first = client.post("/api/judgments/", body, format="json")
            assert first.status_code == 201, first.content
            # A retry (double click) is answered with the same judgment.
            again = client.post("/api/judgments/", body, format="json")
            assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    except Exception as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(exc)
    finally:
        connection.close()


def test_fifty_two_concurrent_raters_fill_every_comparison_with_exactly_k_distinct_raters():
    assert connection.vendor == "postgresql"
    study = build_study(prompts=30, raters_per_pair=K, min_watch_ms=0)
    raters = [qualified_rater() for _ in range(RATERS)]
    start = threading.Barrier(RATERS)
    errors: list[Exception] = []
    threads = [
        threading.Thread(target=_rate_until_done, args=(r, study.slug, start, errors))
        for r in raters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    comparisons = list(Comparison.objects.filter(study=study))
    assert len(comparisons) == 30
    for comparison in comparisons:
        judgments = Judgment.objects.filter(assignment__comparison=comparison)
        raters_seen = list(judgments.values_list("assignment__rater_id", flat=True))
        assert len(raters_seen) == K and len(set(raters_seen)) == K
        assert comparison.assigned_count == K
    assert Judgment.objects.count() == 30 * K
    assert not Assignment.objects.filter(status=Assignment.Status.ACTIVE).exists()
    per_rater = Counter(Judgment.objects.values_list("assignment__rater_id", flat=True))
    assert max(per_rater.values()) <= 30 and len(per_rater) > 1


def test_one_rater_double_clicking_next_holds_a_single_assignment():
    study = build_study(prompts=10, raters_per_pair=5, min_watch_ms=0)
    rater = qualified_rater()
    start = threading.Barrier(8)
    tokens: list[str] = []

    def click() -> None:
        client = APIClient()
        client.force_authenticate(rater)
        try:
            start.wait()
            tokens.append(client.post(f"/api/studies/{study.slug}/next/").json()["token"])
        finally:
            connection.close()

    _all_at_once(click, 8)
    assert len(tokens) == 8 and len(set(tokens)) == 1
    assert Assignment.objects.filter(rater=rater).count() == 1


def test_simultaneous_duplicate_submits_record_one_judgment_and_answer_both_with_it():
    study = build_study(prompts=4, raters_per_pair=1, min_watch_ms=0)
    rater = qualified_rater()
    client = APIClient()
    client.force_authenticate(rater)
    token = client.post(f"/api/studies/{study.slug}/next/").json()["token"]
    body = {
        "token": token,
        "quality": "left",
        "quality_reasons": ["pixel_sharpness"],
        "faithfulness": "tie",
        "faithfulness_reasons": ["equally_good"],
        "watch_ms": 10,
        "played_through": True,
    }
    start = threading.Barrier(6)
    answers: list[tuple[int, int]] = []

    def submit() -> None:
        mine = APIClient()
        mine.force_authenticate(rater)
        try:
            start.wait()
            response = mine.post("/api/judgments/", body, format="json")
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    _all_at_once(submit, 6)
    assert sorted(code for code, _ in answers) == [200] * 5 + [201], answers
    assert len({judgment for _, judgment in answers}) == 1
    assert Judgment.objects.filter(assignment__token=token).count() == 1
    assert Assignment.objects.get(token=token).status == Assignment.Status.DONE


def _all_at_once(target, count: int) -> None:  # type: ignore[no-untyped-def]
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
