"""Agreement and QC numbers against hand counts, statsmodels and `krippendorff`."""

import krippendorff
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_kappa

from analysis import agreement
from analysis.summary import summarise
from tests.analysis.handmade import judgments, votes

AB = ("emu", "direct")
SPLITS = ["aaaaa", "aaaab", "aaabb", "bbbba", "ttaab", "aaaat", "bbbbb", "ababa"]


def _frame():
    return judgments([v for c, s in enumerate(SPLITS) for v in votes(c, c, AB, s)])


def _fleiss_by_hand(table):
    n = table.sum(axis=1)[0]
    p_j = table.sum(axis=0) / table.sum()
    p_i = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    return (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())


def test_fleiss_kappa_matches_statsmodels_and_the_formula():
    frame = _frame()
    kappa = summarise(frame, rounds=0).agreement.set_index("question").loc["quality"]

    # statsmodels on a table built independently: comparisons × raters → category counts
    wide = frame.pivot(index="comparison_id", columns="rater", values="quality").to_numpy()
    table, _ = aggregate_raters(wide)
    assert kappa["fleiss_kappa"] == pytest.approx(statsmodels_kappa(table, method="fleiss"))
    assert kappa["fleiss_kappa"] == pytest.approx(_fleiss_by_hand(table))
    assert kappa["kappa_items"] == len(SPLITS)


def test_krippendorff_alpha_matches_reliability_data():
    frame = _frame()
    # one comparison with only two votes: α uses it, κ (fixed n) cannot
    frame = frame[~((frame["comparison_id"] == 7) & frame["rater"].isin(["r2", "r3", "r4"]))]
    alpha = summarise(frame, rounds=0).agreement.set_index("question").loc["quality"]

    codes = frame["quality"].map({"a": 0, "b": 1, "tie": 2})
    reliability = (
        pd.DataFrame({"rater": frame["rater"], "unit": frame["comparison_id"], "v": codes})
        .pivot(index="rater", columns="unit", values="v")
        .to_numpy(dtype=float)
    )
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert alpha["krippendorff_alpha"] == pytest.approx(expected)
    assert alpha["kappa_items"] == len(SPLITS) - 1


def test_krippendorff_textbook_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: 0.743
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
            [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
        ]
    )
    counts = np.stack([(data == v).sum(axis=0) for v in range(1, 6)], axis=1)
    assert agreement.krippendorff_alpha(counts) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_closed_form_equals_the_package_on_random_tables():
    # items with 0 to 6 votes over 2 to 4 values, some with a single vote (no pairs)
    rng = np.random.default_rng(7)
    for trial in range(40):
        values = 2 + trial % 3
        table = rng.multinomial(rng.integers(0, 7, size=300), np.full(values, 1 / values))
        table[: trial % 5] = 0
        table[5 : 5 + trial % 4, :] = np.eye(values, dtype=int)[0]
        pairable = table[table.sum(axis=1) >= 2]
        expected = krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal")
        assert agreement.krippendorff_alpha(table) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # every vote the same value: undefined, as the package's 0/0
    assert np.isnan(agreement.krippendorff_alpha(np.array([[3, 0], [2, 0]])))


def test_majority_sizes_count_each_split():
    sizes = summarise(_frame(), rounds=0).majority_sizes.query("question == 'quality'")
    counts = dict(zip(sizes["split"], sizes["count"], strict=True))
    # 5–0: aaaaa, bbbbb; 4–1: aaaab, bbbba, aaaat; 3–2: aaabb, ababa; 2–2–1: ttaab
    assert counts == {"5–0": 2, "4–1": 3, "3–2": 2, "2–2–1": 1}
    assert sizes["share"].sum() == pytest.approx(1.0)


def test_rater_agreement_with_majority_by_hand():
    raters = summarise(_frame(), rounds=0).raters.query("question == 'quality'").set_index("rater")
    # comparison 4 (ttaab) has no majority; r0 voted a,a,a,b,·,a,b,a against majorities
    # a,a,a,b,·,a,b,a → 7 of 7; r4 voted a,b,b,a,·,t,b,a → agrees on 0, 6, 7 → 3 of 7
    assert raters.loc["r0", "n"] == 7 and raters.loc["r0", "agreement"] == pytest.approx(1.0)
    assert raters.loc["r4", "agreement"] == pytest.approx(3 / 7)
    # without r4's own vote the other four give a, a, a (aaab), b, none (ttaa), a, b, none
    # (abab); r4 voted a, b, b, a, ·, t, b, · → agrees on comparisons 0 and 6 of 6
    assert raters.loc["r4", "n_others"] == 6
    assert raters.loc["r4", "agreement_others"] == pytest.approx(2 / 6)


def test_position_bias_counts_left_wins():
    # votes(): raters r0, r2, r4 see A on the left, r1 and r3 see B on the left
    frame = judgments(votes(1, 1, AB, "aabbt") + votes(2, 2, AB, "aaaaa"))
    bias = summarise(frame, rounds=0).position_bias.set_index("question").loc["quality"]
    # decisive: c1 r0 a(left) r1 a(right) r2 b(right) r3 b(left); c2 r0,r2,r4 left, r1,r3 right
    assert bias["n"] == 9
    assert bias["left_share"] == pytest.approx(5 / 9)
    assert bias["lo"] < 5 / 9 < bias["hi"]


def test_gold_accuracy_uses_the_raters_gold_marks():
    frame = judgments(
        votes(1, 1, AB, "aaaab") + votes(2, 2, AB, "aaaaa"),
        kind=["gold"] * 5 + ["real"] * 5,
        gold_correct=[True, True, True, True, False] + [None] * 5,
        gold_question=["quality"] * 5 + [""] * 5,
    )
    rows = summarise(frame, rounds=0).agreement.set_index("question")
    assert rows.loc["quality", "gold_accuracy"] == pytest.approx(4 / 5)
    assert rows.loc["quality", "gold_n"] == 5
    assert np.isnan(rows.loc["faithfulness", "gold_accuracy"])


def test_no_gold_information_gives_no_accuracy():
    assert agreement.gold_accuracy(_frame(), question="quality") is None


def test_median_time():
    frame = judgments(votes(1, 1, AB, "aab"), time_spent_ms=[1000, 9000, 3000])
    assert summarise(frame, rounds=0).totals["median_time_ms"] == 3000
