"""Do the 95% intervals cover the true win rate 95% of the time? Seeded simulations."""

import numpy as np
import pytest

from analysis import intervals, stats
from analysis.summary import summarise
from analysis.synthetic import SimulatedPair, simulate_judgments, true_majority_win_rate

RATERS, CONCENTRATION, PROMPTS, STUDIES, ROUNDS = 5, 4.0, 100, 1000, 400


def _simulated_prompt_sums(rng, p):
    """Per prompt of one study: [comparisons, majority A, judgments, votes for A]."""
    per_prompt = rng.beta(CONCENTRATION * p, CONCENTRATION * (1 - p), size=PROMPTS)
    votes_a = rng.binomial(RATERS, per_prompt)
    majority_a = votes_a > RATERS // 2
    return np.stack(
        [np.ones(PROMPTS), majority_a, np.full(PROMPTS, RATERS), votes_a], axis=1
    ).astype(float)


def _simulated_majorities(rng, *, p, prompts, per_prompt, tie_share, studies):
    """(prompts, studies) majority wins of A and comparisons: `per_prompt` comparisons of a
    prompt share its preference, each rater answers 'tie' with probability `tie_share`."""
    q = rng.beta(CONCENTRATION * p, CONCENTRATION * (1 - p), size=(prompts, 1, studies))
    tie = rng.random((prompts, per_prompt, studies, RATERS)) < tie_share
    votes_a = (~tie & (rng.random(tie.shape) < q[..., None])).sum(axis=-1)
    wins = (2 * votes_a > RATERS).sum(axis=1).astype(float)
    return wins, np.full_like(wins, per_prompt)


HEADLINE_SETTINGS = [
    (prompts, per_prompt, p)
    for prompts in (40, 60, 80)
    for per_prompt in (1, 2)
    for p in (0.55, 0.75, 0.95)
]


@pytest.mark.parametrize(("prompts", "per_prompt", "p"), HEADLINE_SETTINGS)
def test_headline_interval_covers_95_percent_at_40_to_80_prompts_with_ties(prompts, per_prompt, p):
    # given 2,000 seeded studies of one pair, 15% tie votes, 5 raters per comparison
    studies, tie_share = 2000, 0.15
    rng = np.random.default_rng([prompts, per_prompt, int(100 * p)])
    truth = true_majority_win_rate(
        p, raters=RATERS, concentration=CONCENTRATION, tie_share=tie_share
    )
    wins, comparisons = _simulated_majorities(
        rng, p=p, prompts=prompts, per_prompt=per_prompt, tie_share=tie_share, studies=studies
    )

    # when each study gets the headline interval (one study per column)
    lo, hi = intervals.clustered_wilson(wins, comparisons)

    # then 95 ± 2% of them cover the truth (the estimate's standard error is 0.005)
    coverage = np.mean((lo <= truth) & (truth <= hi))
    assert 0.93 <= coverage <= 0.97, coverage


def test_the_percentile_bootstrap_it_replaced_fails_the_same_check():
    # the same studies as the (40 prompts, 2 per prompt, p = 0.95) case above: the percentile
    # interval behaves like a Wald interval and is too short near 0 or 1 (0.889 here)
    rng = np.random.default_rng([40, 2, 95])
    truth = true_majority_win_rate(0.95, raters=RATERS, concentration=CONCENTRATION, tie_share=0.15)
    wins, comparisons = _simulated_majorities(
        rng, p=0.95, prompts=40, per_prompt=2, tie_share=0.15, studies=2000
    )
    weights = next(stats.bootstrap_weights(40, rounds=400, seed=1, chunk=400))
    lo, hi = stats.percentile_interval((weights @ wins) / (weights @ comparisons))
    assert np.mean((lo <= truth) & (truth <= hi)) < 0.93
    lo, hi = intervals.clustered_wilson(wins, comparisons)
    assert np.mean((lo <= truth) & (truth <= hi)) >= 0.93


def test_prompts_are_the_unit_when_comparisons_of_a_prompt_agree():
    # 4 comparisons per prompt share its difficulty: counting comparisons as independent
    # (plain Wilson) is too narrow, the headline interval is not
    rng = np.random.default_rng(4)
    truth = true_majority_win_rate(0.7, raters=RATERS, concentration=CONCENTRATION, tie_share=0.15)
    wins, comparisons = _simulated_majorities(
        rng, p=0.7, prompts=40, per_prompt=4, tie_share=0.15, studies=2000
    )
    lo, hi = stats.wilson_interval(wins.sum(axis=0), comparisons.sum(axis=0))
    assert np.mean((lo <= truth) & (truth <= hi)) < 0.9
    lo, hi = intervals.clustered_wilson(wins, comparisons)
    assert 0.93 <= np.mean((lo <= truth) & (truth <= hi)) <= 0.97


@pytest.mark.parametrize("p", [0.55, 0.8])
def test_prompt_bootstrap_covers_the_share_of_judgments(p):
    # the per-judgment share (ties half) keeps its percentile bootstrap over prompts
    rng = np.random.default_rng(2026)
    covered_judgment = covered_naive = 0
    for study in range(STUDIES):
        sums = _simulated_prompt_sums(rng, p)
        rounds = stats.bootstrap_sums(sums, rounds=ROUNDS, seed=study)
        judgment = stats.ratio(rounds[:, 3], rounds[:, 2])[:, None]
        lo, hi = stats.percentile_interval(judgment)
        covered_judgment += lo[0] <= p <= hi[0]
        # the wrong unit: judgments as if independent, ignoring that prompts differ
        lo, hi = stats.wilson_interval(sums[:, 3].sum(), sums[:, 2].sum())
        covered_naive += lo <= p <= hi

    # 1000 studies: the coverage estimate has a standard error of 0.007
    assert abs(covered_judgment / STUDIES - 0.95) < 0.025
    # judgment-level Wilson intervals are too narrow when prompts differ
    assert covered_naive / STUDIES < 0.9


def test_summary_intervals_cover_in_a_small_seeded_run():
    # the same check through the full summary, on fewer studies (each takes ~60 ms)
    pair = SimulatedPair("emu", "direct", quality=0.7, faithfulness=0.6)
    truth = true_majority_win_rate(0.7, raters=RATERS, concentration=CONCENTRATION, tie_share=0.1)
    covered = 0
    studies = 40
    for seed in range(studies):
        frame = simulate_judgments(
            pairs=[pair], prompts=60, concentration=CONCENTRATION, tie_share=0.1, seed=seed
        )
        row = summarise(frame, rounds=300, seed=seed).win_rates.iloc[0]
        covered += row["lo"] <= truth <= row["hi"]
    # binomial(40, 0.95): fewer than 34 covered happens with probability 0.3%
    assert covered >= 34
