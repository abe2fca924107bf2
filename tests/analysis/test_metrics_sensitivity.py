"""Humans against automatic metrics, and every headline number without flagged raters."""

import pandas as pd
import pytest
from scipy import stats as sps

from analysis.frames import without_flagged
from analysis.metrics import scores_from_json
from analysis.summary import ablation_table, sensitivity_table, summarise
from tests.analysis.handmade import judgments, votes

PAIRS = [("emu", "direct"), ("emu", "standard"), ("emu", "finetuned")]


def _study():
    # pair k: prompts 0..3; A wins the majority on prompts below a pair-specific count
    rows, scores = [], []
    a_wins = {0: 3, 1: 2, 2: 1}
    metric_a_wins = {0: 3, 1: 1, 2: 2}
    for k, pair in enumerate(PAIRS):
        for p in range(4):
            c = 10 * k + p
            rows += votes(c, p, pair, "aaabb" if p < a_wins[k] else "aabbb")
            metric = 0.9 if p < metric_a_wins[k] else 0.1
            scores.append((c, {"faithfulness": metric, "note": "x"}, {"faithfulness": 0.5}))
    records = pd.DataFrame(scores, columns=["comparison_id", "scores_a", "scores_b"])
    return judgments(rows), scores_from_json(records)


def test_scores_keep_numeric_keys_present_on_both_sides():
    _, scores = _study()
    assert set(scores["metric"]) == {"faithfulness"}
    assert len(scores) == 12


def test_metric_agreement_by_hand_and_spearman_against_scipy():
    frame, scores = _study()
    summary = summarise(frame, rounds=0, scores=scores)
    per_pair = summary.metric_pairs.query("question == 'quality'").set_index("pair")

    # pair 0: humans A,A,A,B, metric A,A,A,B; pair 1: A,A,B,B vs A,B,B,B; pair 2: A,B,B,B vs A,A,B,B
    assert per_pair.loc["emu vs direct", "agreement"] == pytest.approx(1.0)
    assert per_pair.loc["emu vs standard", "agreement"] == pytest.approx(3 / 4)
    assert per_pair.loc["emu vs finetuned", "agreement"] == pytest.approx(3 / 4)
    assert per_pair["metric_win_rate"].tolist() == [0.75, 0.5, 0.25]
    rho = summary.metric_correlation.set_index("question").loc["quality"]
    expected = sps.spearmanr(per_pair["human_win_rate"], per_pair["metric_win_rate"])
    assert rho["pairs"] == 3
    # human ranks (3, 1, 2), metric ranks (3, 2, 1) by pair name order: 1 - 6·2/24 = 0.5
    assert rho["spearman_rho"] == pytest.approx(expected.statistic) == pytest.approx(0.5)


def test_no_scores_no_metric_rows():
    frame, _ = _study()
    summary = summarise(frame, rounds=0)
    assert summary.metric_pairs.empty and summary.metric_correlation.empty


def test_sensitivity_puts_unflagged_numbers_beside_the_headline():
    # given two flagged raters (r3, r4) who always vote B, which turn 2–1 wins into 2–3 losses
    rows = []
    for p in range(6):
        rows += votes(p, p, PAIRS[0], "aabbb" if p < 4 else "abbbb")
    frame = judgments(rows)
    flagged = frame["rater"].isin(["r3", "r4"])
    frame["rater_is_flagged"] = flagged

    table = sensitivity_table(frame, rounds=100).iloc[0]

    # with them B wins every comparison
    assert table["quality_win_rate"] == pytest.approx(0 / 6)
    # without r3 and r4 every comparison has 3 votes: 4 × aab (A wins) and 2 × abb
    assert table["quality_win_rate_unflagged"] == pytest.approx(4 / 6)
    assert table["judgments"] == 30 and table["judgments_unflagged"] == 18
    alone = ablation_table(summarise(without_flagged(frame), rounds=100)).iloc[0]
    assert table["quality_lo_unflagged"] == alone["quality_lo"]
    assert table["quality_kappa_unflagged"] == pytest.approx(alone["quality_kappa"], nan_ok=True)
