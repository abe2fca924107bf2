"""Win rates, intervals and tests against numbers worked out by hand or by other libraries."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from analysis import stats
from analysis.frames import FrameError, encode_reasons, prepare, reason_matrix
from analysis.summary import ablation_table, summarise
from tests.analysis.handmade import judgments, votes

AB = ("emu", "direct")


def test_majority_vote_reports_ties_and_no_majority():
    # given three comparisons: 3–2 for A, a 2–2–1 split, and three raters choosing tie
    frame = judgments(
        votes(1, 1, AB, "aabba") + votes(2, 2, AB, "attbb") + votes(3, 3, AB, "tttab")
    )

    result = stats.majority_vote(frame, question="quality").set_index("comparison_id")

    assert result["majority"].to_dict() == {1: "a", 2: "none", 3: "tie"}
    assert result["majority_size"].to_dict() == {1: 3, 2: 2, 3: 3}
    assert result.loc[2, ["votes_a", "votes_b", "votes_tie"]].tolist() == [1, 2, 2]


def test_win_rates_match_a_hand_count():
    # given pair emu–direct: 4 comparisons, majorities a, a, b, none (a 2–2–1 split)
    rows = (
        votes(1, 1, AB, "aaabb")
        + votes(2, 2, AB, "aaaaa")
        + votes(3, 3, AB, "abbbb")
        + votes(4, 4, AB, "aabbt")
    )
    summary = summarise(judgments(rows), rounds=200, seed=1)
    q = summary.win_rates.query("question == 'quality'").iloc[0]

    # then the paper's win rate is 2 majorities out of 4 comparisons
    assert q["win_rate"] == pytest.approx(2 / 4)
    assert (q["majority_a"], q["majority_b"], q["no_majority"]) == (2, 1, 1)
    # and per judgment: A votes 3+5+1+2 = 11, one tie counts half, of 20 judgments
    assert q["judgment_share_ties_half"] == pytest.approx(11.5 / 20)
    assert q["lo"] <= q["win_rate"] <= q["hi"]
    table = ablation_table(summary)
    assert table.loc[0, "comparisons"] == 4 and table.loc[0, "judgments"] == 20


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (9, 10), (47, 307), (290, 307)])
def test_wilson_interval_matches_statsmodels(k, n):
    lo, hi = stats.wilson_interval(np.array([k]), np.array([n]))
    expected = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (lo[0], hi[0]) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("a, b", [(0, 0), (7, 3), (3, 7), (150, 120), (60, 0)])
def test_sign_test_matches_scipy_binomtest(a, b):
    p = stats.sign_test(np.array([a]), np.array([b]))[0]
    if a + b == 0:
        assert np.isnan(p)
    else:
        assert p == pytest.approx(sps.binomtest(a, a + b, 0.5).pvalue, rel=1e-9)


def test_bootstrap_resamples_prompts_not_judgments():
    # given the same outcomes, once with one comparison per prompt and once with each prompt's
    # comparison repeated three times (as with three seeds): the prompt count is unchanged
    rng = np.random.default_rng(3)
    outcomes = ["".join(rng.choice(list("ab"), size=5)) for _ in range(40)]
    single = [v for p, o in enumerate(outcomes) for v in votes(p, p, AB, o)]
    tripled = [
        v for p, o in enumerate(outcomes) for s in range(3) for v in votes(3 * p + s, p, AB, o)
    ]
    one = summarise(judgments(single), rounds=300, seed=7).win_rates.iloc[0]
    three = summarise(judgments(tripled), rounds=300, seed=7).win_rates.iloc[0]

    # then the intervals are identical: repeats within a prompt add no information
    assert one["win_rate"] == pytest.approx(three["win_rate"])
    assert (one["lo"], one["hi"]) == pytest.approx((three["lo"], three["hi"]))
    # while the Wilson interval, which takes comparisons as independent, shrinks
    assert three["wilson_hi"] - three["wilson_lo"] < 0.7 * (one["wilson_hi"] - one["wilson_lo"])


def test_bootstrap_weights_are_multinomial_draws():
    weights = np.vstack(list(stats.bootstrap_weights(50, rounds=400, seed=0, chunk=64)))
    assert weights.shape == (400, 50)
    assert (weights.sum(axis=1) == 50).all()
    # each unit is drawn Binomial(50, 1/50) times: mean 1, variance 0.98
    assert weights.mean() == pytest.approx(1.0, abs=1e-9)
    assert weights.var() == pytest.approx(0.98, abs=0.05)
    # the draws of one generator stream, whatever the chunk: counted a round at a time, 64
    # rounds at once or all at once, the weights (and so every interval) are the same
    draws = np.random.default_rng(0).integers(0, 50, size=(400, 50))
    expected = np.stack([np.bincount(row, minlength=50) for row in draws])
    for chunk in (1, 64, 400):
        got = np.vstack(list(stats.bootstrap_weights(50, rounds=400, seed=0, chunk=chunk)))
        np.testing.assert_array_equal(got, expected)


def test_reasons_for_wins_match_a_hand_count():
    # given comparison 1 won by A (3 A votes citing sharpness, sharpness, smoothness+sharpness)
    # and comparison 2 won by B; losers' reasons must not count
    rows = votes(1, 1, AB, "aaabb") + votes(2, 2, AB, "abbbb")
    reasons = [
        ["pixel_sharpness"],
        ["pixel_sharpness"],
        ["motion_smoothness", "pixel_sharpness"],
        ["amount_of_motion"],
        ["amount_of_motion"],
        ["amount_of_motion"],
        ["frame_consistency"],
        ["frame_consistency"],
        ["frame_consistency", "pixel_sharpness"],
        ["frame_consistency"],
    ]
    summary = summarise(judgments(rows, quality_reasons=reasons), rounds=100)
    table = summary.reasons.query("question == 'quality'").set_index(["winner", "reason"])

    assert table.loc[("a", "pixel_sharpness"), "share"] == pytest.approx(3 / 3)
    assert table.loc[("a", "motion_smoothness"), "share"] == pytest.approx(1 / 3)
    assert table.loc[("a", "amount_of_motion"), "share"] == 0
    assert table.loc[("b", "frame_consistency"), "share"] == pytest.approx(4 / 4)
    assert table.loc[("b", "pixel_sharpness"), "share"] == pytest.approx(1 / 4)
    assert table.loc[("b", "pixel_sharpness"), "winning_judgments"] == 4


def test_reasons_encode_from_lists_and_csv_strings_alike():
    lists = pd.Series([["pixel_sharpness", "amount_of_motion"], [], ["equally_bad"]])
    joined = pd.Series(["pixel_sharpness;amount_of_motion", "", "equally_bad"])
    masks = encode_reasons(lists, question="quality")
    assert masks.tolist() == encode_reasons(joined, question="quality").tolist()
    matrix = reason_matrix(masks.to_numpy(), question="quality")
    assert matrix.sum(axis=1).tolist() == [2, 0, 1]
    with pytest.raises(FrameError, match="Unknown quality reason 'sharpness'"):
        encode_reasons(pd.Series([["sharpness"]]), question="quality")


def test_prepare_refuses_unknown_choices():
    frame = pd.DataFrame(votes(1, 1, AB, "ab"), columns=[
        "comparison_id", "prompt_id", "variant_a", "variant_b", "rater", "left_is_a",
        "quality", "faithfulness",
    ])  # fmt: skip
    frame.loc[0, "quality"] = "left"
    with pytest.raises(FrameError, match="quality holds 'left'"):
        prepare(frame)


def test_gold_and_simulated_judgments_stay_out_of_headline_numbers():
    rows = votes(1, 1, AB, "aaaaa") + votes(2, 2, AB, "bbbbb") + votes(3, 3, AB, "bbbbb")
    kinds = ["real"] * 5 + ["gold"] * 5 + ["real"] * 5
    simulated = [False] * 10 + [True] * 5
    frame = judgments(rows, kind=kinds, is_simulated=simulated)

    only_real = summarise(frame, rounds=50).win_rates.iloc[0]
    with_simulated = summarise(frame, rounds=50, include_simulated=True).win_rates.iloc[0]

    assert (only_real["comparisons"], only_real["win_rate"]) == (1, 1.0)
    assert (with_simulated["comparisons"], with_simulated["win_rate"]) == (2, 0.5)


def test_empty_study_gives_empty_tables():
    summary = summarise(judgments([]), rounds=10)
    assert summary.win_rates.empty and ablation_table(summary).empty
    assert summary.totals["judgments"] == 0


def test_summaries_made_together_equal_each_made_alone():
    # The dashboard summarises with and without flagged raters together: one bootstrap serves
    # the counts over the same number of prompts, on threads. Each summary must be the one
    # `summarise_counts` makes alone, also when a third has fewer prompts (its own bootstrap).
    from analysis.counts import study_counts
    from analysis.summary import summarise_counts, summarise_many
    from analysis.synthetic import SimulatedPair, simulate_judgments

    pairs = [SimulatedPair("x", "y", 0.7, 0.6), SimulatedPair("x", "z", 0.4, 0.55)]
    frame = prepare(
        simulate_judgments(pairs=pairs, prompts=60, raters=3, flagged_raters=4, tie_share=0.1)
    )
    fewer = frame[frame["prompt_id"] != frame["prompt_id"].iloc[0]]
    many = [
        study_counts(frame),
        study_counts(frame, without_flagged=True),
        study_counts(fewer),
    ]
    assert many[0].n_prompts == many[1].n_prompts != many[2].n_prompts
    assert many[0].totals != many[1].totals  # flagged raters really change the counts
    together = summarise_many(many, rounds=200, seed=3)
    for counts, got in zip(many, together, strict=True):
        alone = summarise_counts(counts, rounds=200, seed=3)
        for name in ("win_rates", "reasons", "agreement", "majority_sizes", "raters"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(alone, name))
        for question, table in alone.ratings.items():
            pd.testing.assert_frame_equal(got.ratings[question], table)


def test_one_blas_thread_gives_the_setting_back_when_its_last_user_leaves():
    # two summaries on two threads enter and leave in any order; nested threadpool_limits
    # blocks that end out of order would leave one BLAS thread for good
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}  # numpy's BLAS is there, on two threads
        first, second = stats.one_blas_thread(), stats.one_blas_thread()
        first.__enter__()
        second.__enter__()
        assert blas_threads() == {1}
        first.__exit__(None, None, None)  # the first leaves while the second still computes
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


def test_majority_codes_column_by_column_equal_argmax_of_a_strict_majority():
    from analysis.intervals import majority_codes

    table = np.random.default_rng(5).integers(0, 5, size=(5000, 3))
    table[:7] = 0  # no votes: no majority
    strict = 2 * table.max(axis=1) > table.sum(axis=1)
    np.testing.assert_array_equal(majority_codes(table), np.where(strict, table.argmax(axis=1), 3))


def test_undefined_intervals_raise_no_warning_from_threads_running_at_once():
    """An all-NaN column's bounds are NaN without a warning, even while another thread computes
    intervals too (the dashboard recomputes in the background): silencing by swapping the
    process-wide warning filters is not safe across threads, so nothing may warn at all."""
    import threading
    import warnings

    samples = np.full((50, 3), np.nan)
    samples[:, 0] = np.linspace(0, 1, 50)
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        for _ in range(300):
            lo, hi = stats.percentile_interval(samples)
            assert np.isnan(lo[1:]).all() and np.isnan(hi[1:]).all()
            assert lo[0] == pytest.approx(0.025) and hi[0] == pytest.approx(0.975)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [str(w.message) for w in caught] == []
