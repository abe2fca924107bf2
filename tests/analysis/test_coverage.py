"""Does the 95% prompt bootstrap cover the true win rate 95% of the time? Seeded simulation."""

import numpy as np
import pytest

from analysis import stats
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


@pytest.mark.parametrize("p", [0.55, 0.8])
def test_prompt_bootstrap_covers_the_true_win_rates(p):
    rng = np.random.default_rng(2026)
    true_majority = true_majority_win_rate(p, raters=RATERS, concentration=CONCENTRATION)
    covered_majority = covered_judgment = covered_naive = 0
    for study in range(STUDIES):
        sums = _simulated_prompt_sums(rng, p)
        rounds = stats.bootstrap_sums(sums, rounds=ROUNDS, seed=study)
        majority = stats.ratio(rounds[:, 1], rounds[:, 0])[:, None]
        judgment = stats.ratio(rounds[:, 3], rounds[:, 2])[:, None]
        lo, hi = stats.percentile_interval(majority)
        covered_majority += lo[0] <= true_majority <= hi[0]
        lo, hi = stats.percentile_interval(judgment)
        covered_judgment += lo[0] <= p <= hi[0]
        # the wrong unit: judgments as if independent, ignoring that prompts differ
        lo, hi = stats.wilson_interval(sums[:, 3].sum(), sums[:, 2].sum())
        covered_naive += lo <= p <= hi

    # 1000 studies: the coverage estimate has a standard error of 0.007
    assert abs(covered_majority / STUDIES - 0.95) < 0.025
    assert abs(covered_judgment / STUDIES - 0.95) < 0.025
    # judgment-level Wilson intervals are too narrow when prompts differ
    assert covered_naive / STUDIES < 0.9


def test_summary_intervals_cover_in_a_small_seeded_run():
    # the same check through the full summary, on fewer studies (each takes ~60 ms)
    pair = SimulatedPair("emu", "direct", quality=0.7, faithfulness=0.6)
    truth = true_majority_win_rate(0.7, raters=RATERS, concentration=CONCENTRATION)
    covered = 0
    studies = 40
    for seed in range(studies):
        frame = simulate_judgments(pairs=[pair], prompts=80, concentration=CONCENTRATION, seed=seed)
        row = summarise(frame, rounds=300, seed=seed).win_rates.iloc[0]
        covered += row["lo"] <= truth <= row["hi"]
    # binomial(40, 0.95): fewer than 34 covered happens with probability 0.3%
    assert covered >= 34
