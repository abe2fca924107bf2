"""Simulated raters in the normal pass: Django's live server on the embedded SQLite database.

The full checks run on gunicorn + PostgreSQL in test_load.py (`services`); this keeps the HTTP
client, the start link, CSRF and range fetches covered when those servers are absent.
"""

from __future__ import annotations

import pytest

from raters import simulation
from raters.models import Judgment, Rater
from tests.system.servers import assert_judgments_consistent, build_bulk_study

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_simulated_raters_finish_a_small_study(live_server, _media_root):
    study = build_bulk_study(
        comparisons=4,
        pairs=1,
        raters_per_pair=2,
        slug="ci-embedded",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    accounts = simulation.create_simulated_raters(study=study, count=2, careless_share=0.0)
    report = simulation.run_simulation(
        base_url=live_server.url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=simulation.Behaviour(wait_scale=0.0),
        concurrency=1,
    )
    assert report.outcomes() == {"done": 2}, report.summary()
    assert len(report.accepted) == 8
    assert_judgments_consistent(study, report.accepted)
    assert Judgment.objects.filter(is_simulated=True).count() == 8
    assert len(report.latencies("video")) == 16


def test_a_refused_rater_stops_with_the_sites_reason(live_server, _media_root):
    # Given a study that needs the qualification quiz and a simulated rater who skipped it
    study = build_bulk_study(
        comparisons=2, pairs=1, slug="ci-quiz", media_root=_media_root, min_watch_ms=0
    )
    (account,) = simulation.create_simulated_raters(study=study, count=1)
    Rater.objects.filter(external_id=account.external_id).update(qualified_at=None)
    # When it asks for work, it stops with the site's message instead of looping or crashing
    report = simulation.run_simulation(
        base_url=live_server.url,
        study_slug=study.slug,
        accounts=[account],
        behaviour=simulation.Behaviour(wait_scale=0.0),
    )
    (result,) = report.results
    assert result.outcome.startswith("stopped"), result
    assert "quiz" in result.outcome
    assert not result.accepted


def test_simulate_raters_names_an_unknown_study():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No study with slug 'nope'"):
        call_command("simulate_raters", "--study", "nope", "--raters", "1")


def test_simulated_raters_use_the_studys_start_link_parameter(live_server, _media_root):
    # Given a study recruited on a platform whose start links carry ?workerId=…
    study = build_bulk_study(
        comparisons=1,
        pairs=1,
        raters_per_pair=1,
        slug="ci-worker-id",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
        external_id_param="workerId",
    )
    accounts = simulation.create_simulated_raters(study=study, count=2, careless_share=0.0)
    common = dict(
        base_url=live_server.url,
        study_slug=study.slug,
        behaviour=simulation.Behaviour(wait_scale=0.0),
    )
    # When one arrives with the default parameter, the link refuses it (no worker id)
    wrong = simulation.run_simulation(accounts=accounts[:1], **common)
    assert wrong.results[0].outcome == "stopped: start link answered 400"
    # And with the study's own parameter it rates, as the same (simulated) rater
    right = simulation.run_simulation(accounts=accounts[1:], id_param="workerId", **common)
    assert right.outcomes() == {"done": 1}, right.summary()
    judgment = Judgment.objects.get(assignment__comparison__study=study)
    assert judgment.is_simulated
    assert judgment.assignment.rater.rater.external_id == accounts[1].external_id


def test_wait_scale_zero_is_accepted_under_the_studys_watch_minimum(live_server, _media_root):
    # Given a study with the default 2 s watch minimum, and simulated raters that do not wait
    study = build_bulk_study(
        comparisons=3,
        pairs=1,
        raters_per_pair=1,
        slug="ci-no-wait",
        media_root=_media_root,
        min_watch_ms=2000,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    accounts = simulation.create_simulated_raters(study=study, count=1, careless_share=0.0)
    report = simulation.run_simulation(
        base_url=live_server.url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=simulation.Behaviour(wait_scale=0.0, retry_for_s=5),
    )
    # Then every submit is accepted (as "no waiting" promises), and marked simulated
    assert report.outcomes() == {"done": 1}, report.summary()
    assert Judgment.objects.filter(is_simulated=True).count() == 3
    assert report.seconds < 2 * 3
