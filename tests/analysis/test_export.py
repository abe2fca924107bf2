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
from raters.models import Comparison, Judgment
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
    assert first["quality_reasons"] == "pixel_sharpness"
    assert first["kind"] == "real" and first["prompt"]
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


def test_arena_json_is_fastchat_clean_battle_style(tmp_path, study):
    comparison = Comparison.objects.filter(study=study).first()
    Comparison.objects.filter(pk=comparison.pk).update(kind=Comparison.Kind.GOLD)
    battles = json.loads(_export(tmp_path, "arena-json").read_text())

    assert len(battles) == 15  # the gold comparison's five judgments are not battles
    battle = battles[0]
    assert {"model_a", "model_b", "winner", "judge", "tstamp", "question_id"} <= set(battle)
    assert battle["winner"] in {"model_a", "model_b", "tie"}
    assert battle["model_a"] == "emu@v1"


def test_simulated_judgments_only_on_request(tmp_path, study):
    Judgment.objects.filter(pk=Judgment.objects.order_by("id").first().pk).update(is_simulated=True)
    assert len(list(csv.DictReader(_export(tmp_path, "csv").open()))) == 19
    path = _export(tmp_path, "csv", "--include-simulated", name="all.csv")
    assert len(list(csv.DictReader(path.open()))) == 20


def test_plain_summary_counts_in_the_database(tmp_path, study):
    path = _export(tmp_path, "csv")
    summary = pd.read_csv(export.summary_path(path))
    row = summary.set_index("variant_b").loc["direct-t2v@v1"]
    # quality: prompt 0 votes aaaab, prompt 1 abbbb → 5 A of 10 judgments
    assert row["n"] == 10 and row["quality_win_rate_a"] == pytest.approx(0.5)
    assert row["quality_wilson_lo"] < 0.5 < row["quality_wilson_hi"]


def test_full_summary_is_the_ablation_table_with_agreement(tmp_path, study):
    path = _export(tmp_path, "csv", "--summary", "--rounds", "100")
    summary = pd.read_csv(export.summary_path(path))
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
