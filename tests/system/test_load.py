"""Simulated raters against gunicorn on PostgreSQL, at CI size (make bench runs the full size).

The raters drive the real site over HTTP (start link, next task, both clips with range
requests, JUICE submits); afterwards the database must hold every accepted judgment once, no
comparison may have more raters than the study asks for, and every judgment is marked simulated.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from raters import services, simulation
from raters.models import Comparison, Judgment, Rater
from tests.databases import database_url
from tests.system.servers import (
    assert_judgments_consistent,
    build_bulk_study,
    gunicorn,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

FAST = simulation.Behaviour(wait_scale=0.0, retry_for_s=30)


@pytest.fixture
def site(_media_root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    with gunicorn(
        db_url=database_url(),
        media_root=_media_root,
        log=tmp_path / "gunicorn.log",
        workers=3,
    ) as live:
        yield live


def test_simulated_raters_finish_a_study_over_http(site, _media_root):
    # Given a study of 30 comparisons × 3 raters and 12 simulated raters, 6 at a time
    study = build_bulk_study(
        comparisons=30,
        pairs=3,
        raters_per_pair=3,
        slug="ci-load",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    accounts = simulation.create_simulated_raters(study=study, count=12, careless_share=0.0)
    # When they rate until nothing is left
    report = simulation.run_simulation(
        base_url=site.url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=FAST,
        concurrency=6,
        oracle=simulation.score_oracle,
    )
    print(report.summary())
    # Then every rater finished without an error and every slot is filled exactly once
    assert not [e for r in report.results for e in r.errors], report.summary()
    assert report.outcomes() == {"done": 12}
    assert len(report.accepted) == 30 * 3
    assert_judgments_consistent(study, report.accepted)
    assert Judgment.objects.filter(assignment__comparison__study=study).count() == 90
    # And they are marked simulated, on the profile and on every judgment
    assert not Judgment.objects.filter(is_simulated=False).exists()
    assert Rater.objects.filter(is_simulated=True).count() == 12
    # And both clips were fetched with range requests on every task
    assert len(report.latencies("video")) == 2 * 90
    assert len(report.latencies("next")) >= 90


def test_scored_videos_steer_attentive_simulated_raters(site, _media_root):
    # Given comparisons where the automatic scores clearly favour video A
    study = build_bulk_study(
        comparisons=12,
        pairs=2,
        raters_per_pair=2,
        slug="ci-scores",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    for comparison in Comparison.objects.filter(study=study).select_related("video_a", "video_b"):
        # Videos are shared between comparisons through variant 0 (always side A).
        comparison.video_a.scores = {"quality": 0.9, "clip_score": 0.9}
        comparison.video_a.save(update_fields=["scores"])
        comparison.video_b.scores = {"quality": 0.1, "clip_score": 0.1}
        comparison.video_b.save(update_fields=["scores"])
    accounts = simulation.create_simulated_raters(study=study, count=4, careless_share=0.0)
    # When attentive raters with little noise rate them
    report = simulation.run_simulation(
        base_url=site.url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=simulation.Behaviour(wait_scale=0.0, noise=0.05, position_bias=0.0),
        concurrency=4,
        oracle=simulation.score_oracle,
    )
    # Then A wins nearly every quality and faithfulness vote, whichever side it was shown on
    judgments = Judgment.objects.filter(assignment__comparison__study=study)
    assert judgments.count() == 24
    assert judgments.filter(quality="a").count() >= 22, report.summary()
    assert judgments.filter(faithfulness="a").count() >= 22
    sides = Counter(judgments.values_list("assignment__left_is_a", flat=True))
    assert sides[True] > 0 and sides[False] > 0, "left/right was not randomised"


def test_simulate_raters_command_dry_runs_a_study(site, _media_root, capsys):
    study = build_bulk_study(
        comparisons=6,
        pairs=1,
        raters_per_pair=2,
        slug="ci-command",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    call_command(
        "simulate_raters",
        "--study",
        study.slug,
        "--raters",
        "3",
        "--concurrency",
        "3",
        "--base-url",
        site.url,
        "--wait-scale",
        "0",
        "--careless-share",
        "0",
    )
    out = capsys.readouterr().out
    assert "3 simulated raters" in out and "12 judgments accepted" in out, out
    assert Judgment.objects.filter(assignment__comparison__study=study, is_simulated=True).count()
    assert Judgment.objects.filter(assignment__comparison__study=study).count() == 12


def test_careless_simulated_raters_are_stopped_by_gold_checks(site, _media_root):
    # Given a study where half the tasks are hidden gold comparisons (B degraded)
    study = build_bulk_study(
        comparisons=16,
        pairs=2,
        raters_per_pair=12,
        slug="ci-gold",
        media_root=_media_root,
        min_watch_ms=0,
        gold_rate=0.5,
        mirror_rate=0.0,
        gold_min_answers=3,
    )
    assert services.build_gold_comparisons(study=study, count=8) == 8
    accounts = [
        *simulation.create_simulated_raters(study=study, count=4, careless_share=0.0, seed=1),
        *simulation.create_simulated_raters(study=study, count=6, careless_share=1.0, seed=2),
    ]
    # When attentive and careless simulated raters rate it
    report = simulation.run_simulation(
        base_url=site.url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=FAST,
        concurrency=10,
        oracle=simulation.score_oracle,
    )
    by_care = {False: [], True: []}
    for result in report.results:
        by_care[result.careless].append(result.outcome)
    # Then QC stops (nearly) every careless rater and none of the attentive ones
    assert by_care[False] == ["done"] * 4, report.summary()
    stopped = [o for o in by_care[True] if o.startswith("stopped")]
    assert len(stopped) >= 4, by_care[True]
    flagged = Rater.objects.filter(is_simulated=True, is_flagged=True)
    assert flagged.count() == len(stopped)
    assert not flagged.filter(external_id__in=[a.external_id for a in accounts[:4]]).exists()
