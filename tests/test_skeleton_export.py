"""`export_results` (issue 2 form): one row per judgment, plus a per-variant-pair summary."""

import csv
import json

import pytest
from django.core.management import CommandError, call_command

from tests.factories import AssignmentFactory, JudgmentFactory, VariantPairFactory, make_comparison

pytestmark = pytest.mark.django_db


def _judgments():
    pair = VariantPairFactory()
    comparison = make_comparison(pair=pair)
    JudgmentFactory(assignment=AssignmentFactory(comparison=comparison, left_is_a=True))
    JudgmentFactory(
        assignment=AssignmentFactory(comparison=comparison, left_is_a=False),
        quality="b",
        faithfulness="tie",
        faithfulness_reasons=["equally_bad"],
    )
    return pair


def test_export_csv_writes_one_row_per_judgment_and_a_summary(tmp_path):
    pair = _judgments()
    out = tmp_path / "j.csv"
    call_command("export_results", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2
    assert {r["quality"] for r in rows} == {"a", "b"}
    assert rows[0]["variant_a"] == f"{pair.variant_a.slug}@v1"
    summary = list(csv.DictReader((tmp_path / "j.csv.summary.csv").open()))
    assert len(summary) == 1
    # one comparison, votes a and b: no strict majority, so A wins none of 1 comparisons
    assert float(summary[0]["quality_win_rate"]) == 0.0
    # as a share of judgments: quality a, b → 0.5; faithfulness b, tie → 0.25
    assert float(summary[0]["quality_judgment_share_ties_half"]) == pytest.approx(0.5)
    assert float(summary[0]["faithfulness_judgment_share_ties_half"]) == pytest.approx(0.25)


def test_export_jsonl_keeps_reasons_as_lists(tmp_path):
    _judgments()
    out = tmp_path / "j.jsonl"
    call_command("export_results", "--format", "jsonl", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    assert ["equally_bad"] in [r["faithfulness_reasons"] for r in rows]


def test_export_refuses_an_unknown_study(tmp_path):
    with pytest.raises(CommandError, match="No study"):
        call_command("export_results", "--study", "nope", "--output", str(tmp_path / "x.csv"))
