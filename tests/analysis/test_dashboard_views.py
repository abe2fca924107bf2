"""The staff dashboard: staff see the table and charts, raters get 403, the CSV matches."""

import csv
import io
import json

import pandas as pd
import pytest
from django.urls import reverse

from analysis import queries
from raters import services
from raters.models import Comparison, Judgment, Rater
from tests.analysis.studies import build_study
from tests.factories import AssignmentFactory, JudgmentFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return build_study(prompts=3)


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory())
    return client


def _urls(study):
    return [
        reverse("analysis:index"),
        reverse("analysis:dashboard", args=[study.slug]),
        reverse("analysis:dashboard-data", args=[study.slug]),
        reverse("analysis:table-csv", args=[study.slug]),
        reverse("analysis:plotly-js"),
    ]


def test_raters_get_403_everywhere(client, study):
    client.force_login(UserFactory())
    for url in _urls(study):
        assert client.get(url).status_code == 403, url


def test_anonymous_visitors_are_sent_to_login(client, study):
    response = client.get(reverse("analysis:dashboard", args=[study.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_staff_see_the_ablation_table_and_chart_data(staff_client, study):
    response = staff_client.get(reverse("analysis:dashboard", args=[study.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "direct-t2v" in html and "standard-schedule" in html
    # quality: A wins the majority on prompts 0 and 2 of 3 → 66.7%
    assert "66.7" in html
    figures = response.context["figures"]
    assert {"win_rates", "reasons", "heatmap", "agreement", "progress"} <= set(figures)
    assert "https://cdn" not in html and reverse("analysis:plotly-js") in html


def test_data_endpoint_returns_figures_and_table(staff_client, study):
    response = staff_client.get(reverse("analysis:dashboard-data", args=[study.slug]))
    data = json.loads(response.content)
    assert data["figures"]["win_rates"]["data"][0]["type"] == "bar"
    assert "ablation-table" in data["table_html"]
    assert data["version"].startswith("30:")


def test_table_csv_has_one_row_per_pair_with_unflagged_columns(staff_client, study):
    response = staff_client.get(reverse("analysis:table-csv", args=[study.slug]))
    assert response["Content-Disposition"].endswith('ablation-table.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["variant_b"] for r in rows] == ["direct-t2v@v1", "standard-schedule@v1"]
    row = rows[0]
    assert float(row["quality_win_rate"]) == pytest.approx(2 / 3)
    assert int(row["judgments"]) == 15 and int(row["judgments_unflagged"]) == 12
    # rater 0 (flagged) voted A on faithfulness; without them it is 2 A vs 2 B: no majority
    assert float(row["faithfulness_win_rate"]) == pytest.approx(1.0)
    assert float(row["faithfulness_win_rate_unflagged"]) == pytest.approx(0.0)


def test_plotly_is_served_locally(staff_client):
    response = staff_client.get(reverse("analysis:plotly-js"))
    assert response.status_code == 200
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_gold_comparisons_give_gold_accuracy_and_stay_out_of_the_table(study):
    # given one comparison turned into a gold check on quality, 4 of its 5 raters right
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    Comparison.objects.filter(pk=comparison.pk).update(kind="gold", gold_question="quality")
    ids = list(
        Judgment.objects.filter(assignment__comparison=comparison)
        .order_by("id")
        .values_list("id", flat=True)
    )
    Judgment.objects.filter(pk__in=ids[:4]).update(gold_correct=True)
    Judgment.objects.filter(pk=ids[4]).update(gold_correct=False)

    summary = queries.study_summary(study=study).summary

    gold = summary.agreement.set_index("question").loc["quality"]
    assert (gold["gold_accuracy"], gold["gold_n"]) == (pytest.approx(0.8), 5)
    assert summary.totals["qc_judgments"] == 5
    first = summary.win_rates.query("question == 'quality'").iloc[0]
    assert first["comparisons"] == 2  # three prompts, one of them now gold


@pytest.mark.services
def test_postgresql_copy_loader_matches_the_export_rows(study):
    # the dashboard reads PostgreSQL through COPY; the export reads row by row
    from analysis import frames
    from analysis.summary import ablation_table, summarise

    query = queries.export_query(study=study)
    exported = pd.DataFrame.from_records(list(query.rows), columns=list(query.columns))
    via_copy = queries.judgment_frame(study=study)
    assert via_copy["is_flagged"].sum() == 6 and via_copy["left_is_a"].dtype == bool
    pd.testing.assert_frame_equal(
        ablation_table(summarise(via_copy, rounds=100)),
        ablation_table(summarise(frames.prepare(exported), rounds=100)),
    )


def test_big_studies_recompute_at_most_every_four_times_the_last_duration(study, monkeypatch):
    clock = iter([1000.0, 1010.0, 1020.0, 1045.0, 1046.0, 1047.0])  # the first takes 10 s
    monkeypatch.setattr(queries, "_now", lambda: next(clock))
    first = queries.study_summary(study=study)
    _one_more_judgment(study)

    # 10 s after it finished (before 1010 + 3 × 10), the last summary still stands
    stale = queries.study_summary(study=study)
    assert stale.summary.totals["judgments"] == first.summary.totals["judgments"]
    # at 1045 a fresh one is computed, with the new judgment
    fresh = queries.study_summary(study=study)
    assert fresh.summary.totals["judgments"] == first.summary.totals["judgments"] + 1


def _one_more_judgment(study):
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    JudgmentFactory(assignment=AssignmentFactory(comparison=comparison, rater=UserFactory()))


def test_summary_cache_is_keyed_by_the_latest_judgment_and_flagged_raters(study, monkeypatch):
    # given a computed summary (each computation instant, so the big-study throttle is over)
    monkeypatch.setattr(queries, "_now", lambda: 1000.0)
    calls = []
    real = queries.summarise_many
    monkeypatch.setattr(
        queries, "summarise_many", lambda many, **k: calls.extend(many) or real(many, **k)
    )
    first = queries.study_summary(study=study)
    assert len(calls) == 2  # all raters, and without flagged ones

    # when nothing changed, then it comes from the cache
    assert queries.study_summary(study=study).summary.totals == first.summary.totals
    assert len(calls) == 2

    # a new judgment is a new key
    _one_more_judgment(study)
    assert queries.study_summary(study=study).summary.totals["judgments"] == 31
    assert len(calls) == 4

    # and so is a rater stopped by quality control (their judgments leave the unflagged side)
    user = Judgment.objects.order_by("-id").first().assignment.rater
    services.stop_rater(rater=Rater.objects.get_or_create(user=user)[0], reason="gold")
    data = queries.study_summary(study=study)
    assert len(calls) == 6
    assert data.unflagged.totals["judgments"] < first.unflagged.totals["judgments"] + 1


def test_dashboard_lists_ratings_with_ranks(staff_client, study):
    response = staff_client.get(reverse("analysis:dashboard", args=[study.slug]))
    ratings = response.context["ratings"]["quality"]
    assert {r["variant"] for r in ratings} == {"emu@v1", "direct-t2v@v1", "standard-schedule@v1"}
    assert all(r["rank"] >= 1 for r in ratings)
    assert "Ratings across variants" in response.content.decode()


def test_dashboard_defines_its_headline_and_cites_nothing_outside_the_repo(staff_client, study):
    html = staff_client.get(reverse("analysis:dashboard", args=[study.slug])).content.decode()
    assert "strict majority of raters preferred A" in html
    assert "prompt-clustered Wilson score interval" in html
    assert "SPEC" not in html and "§" not in html


def test_one_rater_is_not_plural_and_missing_kappa_says_why(staff_client):
    # given a study where each comparison has one judgment from the one rater
    study = build_study(prompts=2, raters=1, slug="solo")
    html = staff_client.get(reverse("analysis:dashboard", args=[study.slug])).content.decode()
    assert "1 rater." in html and "1 raters" not in html
    assert "needs ≥ 2 raters per comparison" in html
    assert "nan" not in html.split('id="analysis-figures"')[0]


def test_progress_axis_spans_whole_periods_when_judgments_fall_in_one_hour():
    from analysis.counts import progress
    from analysis.figures import progress_figure

    stamps = pd.Timestamp("2026-01-01 10:00", tz="UTC") + pd.to_timedelta([1, 2, 3], unit="ms")
    layout = progress_figure(progress(pd.Series(stamps))).layout
    start, end = (pd.Timestamp(t) for t in layout.xaxis.range)
    assert end - start == pd.Timedelta(hours=2)
    assert layout.xaxis.tickformat == "%b %d\n%H:%M"


def test_reason_labels_sit_on_the_axis_that_has_room_for_them(study):
    from analysis.figures import reasons_figure
    from analysis.summary import summarise

    figure = reasons_figure(summarise(queries.judgment_frame(study=study), rounds=10).reasons)
    bars = [trace for trace in figure.data if trace.type == "bar"]
    assert bars and all(trace.orientation == "h" for trace in bars)
    assert "Pixel sharpness" in bars[0].y
    assert figure.layout.yaxis.automargin


@pytest.mark.services
def test_dashboard_counts_from_postgresql_equal_the_summary_of_every_judgment():
    # The dashboard reads lean columns (reason masks and choices computed by PostgreSQL) and
    # counts them without copying; summarising the full judgments frame must give the same
    # numbers, bootstrap intervals included, with and without flagged raters.
    from analysis import frames
    from analysis.metrics import scores_from_json
    from analysis.summary import summarise
    from generation.models import Video

    study = build_study(prompts=6, seed=3)
    rows = Judgment.objects.filter(assignment__comparison__study=study).order_by("id")
    ids = list(rows.values_list("id", flat=True))
    Judgment.objects.filter(pk__in=ids[::3]).update(
        quality_reasons=["pixel_sharpness", "amount_of_motion"],
        faithfulness_reasons=["temporal_alignment"],
    )
    Judgment.objects.filter(pk__in=ids[1::7]).update(
        quality="tie", quality_reasons=["equally_bad"], faithfulness="b"
    )
    Judgment.objects.filter(pk__in=ids[2::11]).update(is_flagged=True, time_spent_ms=777)
    comparison = Comparison.objects.filter(study=study).order_by("id").last()
    Comparison.objects.filter(pk=comparison.pk).update(kind="gold", gold_question="faithfulness")
    Judgment.objects.filter(assignment__comparison=comparison).update(gold_correct=True)
    first_gold = Judgment.objects.filter(assignment__comparison=comparison).order_by("id")[0]
    Judgment.objects.filter(pk=first_gold.pk).update(gold_correct=False)
    # one rater flagged by quality control: only the unflagged summary leaves them out
    flagged_user = Judgment.objects.get(pk=ids[4]).assignment.rater
    Rater.objects.update_or_create(user=flagged_user, defaults={"is_flagged": True})

    videos = Video.objects.filter(job__batch__in=study.batches.all()).order_by("id")
    for k, video in enumerate(videos):
        video.scores = {"clip": k / 7, "faithfulness": 1 - k % 3 / 4, "label": "x", "ok": True}
        if k % 5 == 0:
            video.scores = {"clip": 2**60 + k, "big": 1e308}
        video.save(update_fields=["scores"])

    data = queries.study_summary(study=study, rounds=100)
    frame = queries.judgment_frame(study=study)
    assert frame["rater_is_flagged"].any() and (frame["gold_correct"] == 0).any()
    # scores paired in SQL, as metrics.scores_from_json pairs them in Python
    records = pd.DataFrame(
        list(study.comparisons.values_list("id", "video_a__scores", "video_b__scores")),
        columns=["comparison_id", "scores_a", "scores_b"],
    )
    pd.testing.assert_frame_equal(
        queries.score_frame(study=study),
        scores_from_json(records).sort_values(["comparison_id", "metric"], ignore_index=True),
    )
    assert not data.summary.metric_pairs.empty
    for got, rows_ in ((data.summary, frame), (data.unflagged, frames.without_flagged(frame))):
        expected = summarise(rows_, rounds=100, scores=queries.score_frame(study=study))
        for name in ("win_rates", "reasons", "agreement", "majority_sizes", "raters"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name))
        for name in ("position_bias", "metric_pairs", "metric_correlation", "progress"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name))
        for question, table in expected.ratings.items():
            pd.testing.assert_frame_equal(got.ratings[question], table)
        assert got.totals == expected.totals
    assert data.summary.totals["qc_judgments"] == 5
    assert data.summary.win_rates["lo"].notna().all()


def test_loading_the_urls_leaves_pandas_scipy_and_plotly_unimported():
    # A web worker that serves raters never pays for the analysis stack: the dashboard's
    # views import it on the first analysis request (benchmarks/bench_export.py measures the
    # worker's memory before and after one).
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, django; django.setup(); import evalsite.wsgi; "
        "from django.urls import get_resolver, reverse; get_resolver().url_patterns; "
        "reverse('analysis:dashboard', args=['x']); "
        "print(sorted(m for m in ('pandas', 'scipy', 'plotly') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "evalsite.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_dashboard_reads_the_scores_on_a_second_connection_while_it_counts(monkeypatch):
    # Outside a transaction the scores query runs in a thread of its own (PostgreSQL answers it
    # on the other core); the numbers are those of reading it in line, and no connection is
    # left open.
    import threading

    from django.db import connection

    from analysis.summary import summarise
    from generation.models import Video

    study = build_study(prompts=4, seed=5)
    for k, video in enumerate(Video.objects.filter(job__batch__in=study.batches.all())):
        video.scores = {"clip": k % 5 / 4}
        video.save(update_fields=["scores"])
    threads, read = [], queries.score_frame

    def spy(**kwargs):
        threads.append(threading.current_thread())
        return read(**kwargs)

    monkeypatch.setattr(queries, "score_frame", spy)

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = sessions()
    data = queries.study_summary(study=study, rounds=50)
    assert threads and threads[0] is not threading.main_thread()
    expected = summarise(queries.judgment_frame(study=study), rounds=50, scores=read(study=study))
    assert not expected.metric_pairs.empty
    pd.testing.assert_frame_equal(data.summary.metric_pairs, expected.metric_pairs)
    threads[0].join(timeout=10)
    assert sessions() == before


@pytest.mark.services
def test_binary_copy_reader_keeps_every_value_and_refuses_rows_it_cannot_read(monkeypatch):
    # The dashboard reads COPY's binary format block by block, in 32 bits where a block fits:
    # values past 32 bits, rows across block boundaries and an empty result come back whole,
    # and a NULL (a row of another shape) is refused rather than misread.
    import numpy as np

    monkeypatch.setattr(queries, "_BLOCK_BYTES", 1000)  # a few rows per block
    sql = (
        "SELECT g::bigint, (g * 3000000000)::bigint, (-g)::bigint FROM generate_series(1, %s) AS g"
    )
    first, big, negative = queries._copy_bigints(sql, [500], columns=3)
    np.testing.assert_array_equal(first, np.arange(1, 501))
    assert first.dtype == np.int32 and big.dtype == np.int64
    np.testing.assert_array_equal(big, np.arange(1, 501, dtype=np.int64) * 3_000_000_000)
    np.testing.assert_array_equal(negative, -np.arange(1, 501))
    empty = queries._copy_bigints(sql, [0], columns=3)
    assert [len(column) for column in empty] == [0, 0, 0]
    with pytest.raises(ValueError, match="NULL"):
        queries._copy_bigints(
            "SELECT g::bigint, CASE WHEN g = 77 THEN NULL ELSE g END::bigint "
            "FROM generate_series(1, 100) AS g",
            [],
            columns=2,
        )
    # an error PostgreSQL meets halfway through is raised, and the connection still works
    import psycopg
    from django.db import connection, transaction

    with pytest.raises(psycopg.errors.DivisionByZero), transaction.atomic():
        queries._copy_bigints(
            "SELECT (1 / (300 - g))::bigint FROM generate_series(1, 400) g", [], columns=1
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone() == (42,)
    (again,) = queries._copy_bigints(
        "SELECT g::bigint FROM generate_series(1, %s) AS g", [3], columns=1
    )
    np.testing.assert_array_equal(again, [1, 2, 3])
