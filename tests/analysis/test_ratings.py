"""Bradley–Terry–Davidson against a direct likelihood maximisation and closed forms."""

import numpy as np
import pytest
from scipy.optimize import minimize

from analysis.ratings import fit_davidson, rank_by_interval
from analysis.summary import summarise
from tests.analysis.handmade import judgments, votes

# Edges of a 4-variant study (not every pair compared) and their counts.
EDGE_I = np.array([0, 0, 1, 2, 1])
EDGE_J = np.array([1, 2, 2, 3, 3])
WINS_I = np.array([30.0, 12, 20, 8, 25])
WINS_J = np.array([10.0, 14, 15, 22, 9])
TIES = np.array([5.0, 6, 2, 4, 3])


def direct_negative_log_likelihood(params, prior):
    """Davidson written straight from the probabilities, for scipy to minimise."""
    theta, log_nu = params[:4], params[4]
    pi, nu = np.exp(theta), np.exp(log_nu)
    d = pi[EDGE_I] + pi[EDGE_J] + nu * np.sqrt(pi[EDGE_I] * pi[EDGE_J])
    ll = (
        WINS_I * np.log(pi[EDGE_I] / d)
        + WINS_J * np.log(pi[EDGE_J] / d)
        + TIES * np.log(nu * np.sqrt(pi[EDGE_I] * pi[EDGE_J]) / d)
    ).sum()
    return -(ll - prior / 2 * (theta @ theta + log_nu**2))


@pytest.mark.parametrize("prior", [0.01, 1.0])
def test_davidson_fit_matches_scipy_minimisation(prior):
    fit = fit_davidson(
        n_items=4, i=EDGE_I, j=EDGE_J, wins_i=WINS_I, wins_j=WINS_J, ties=TIES, prior=prior
    )
    direct = minimize(
        direct_negative_log_likelihood, np.zeros(5), args=(prior,), method="BFGS", tol=1e-10
    )
    assert np.abs(direct.jac).max() < 1e-4  # scipy reached its optimum
    assert fit.theta[0] == pytest.approx(direct.x[:4], abs=1e-4)
    assert fit.log_nu[0] == pytest.approx(direct.x[4], abs=1e-4)
    assert -fit.log_likelihood[0] == pytest.approx(direct.fun, rel=1e-8)


def test_two_variants_reproduce_the_observed_shares():
    # the Davidson MLE for one pair fits win, loss and tie shares exactly: 60/30/10
    fit = fit_davidson(
        n_items=2, i=[0], j=[1], wins_i=[60.0], wins_j=[30.0], ties=[10.0], prior=1e-10
    )
    pi, nu = np.exp(fit.theta[0]), np.exp(fit.log_nu[0])
    d = pi[0] + pi[1] + nu * np.sqrt(pi[0] * pi[1])
    assert (pi[0] / d, pi[1] / d) == pytest.approx((0.6, 0.3), abs=1e-6)


def test_without_ties_it_is_plain_bradley_terry():
    fit = fit_davidson(
        n_items=2, i=[0], j=[1], wins_i=[75.0], wins_j=[25.0], ties=[0.0], prior=1e-10
    )
    assert fit.theta[0, 0] - fit.theta[0, 1] == pytest.approx(np.log(3), abs=1e-6)
    assert np.exp(fit.log_nu[0]) < 1e-20


def test_complete_separation_stays_finite():
    fit = fit_davidson(n_items=2, i=[0], j=[1], wins_i=[40.0], wins_j=[0.0], ties=[0.0])
    assert np.isfinite(fit.theta).all()
    assert fit.theta[0, 0] > fit.theta[0, 1] + 3


def test_batched_rounds_equal_separate_fits():
    rng = np.random.default_rng(0)
    wins_i, wins_j, ties = (rng.integers(1, 30, size=(6, 5)).astype(float) for _ in range(3))
    ties[2] = 0  # one round without ties
    batch = fit_davidson(n_items=4, i=EDGE_I, j=EDGE_J, wins_i=wins_i, wins_j=wins_j, ties=ties)
    for r in range(6):
        one = fit_davidson(
            n_items=4, i=EDGE_I, j=EDGE_J, wins_i=wins_i[r], wins_j=wins_j[r], ties=ties[r]
        )
        assert batch.theta[r] == pytest.approx(one.theta[0], abs=1e-8)


def test_rank_counts_variants_wholly_above():
    lo = np.array([1.0, 0.8, -0.5, -0.6, 5.0])
    hi = np.array([2.0, 1.5, 0.9, 0.0, 6.0])
    component = np.array([0, 0, 0, 0, 1])
    # variant 3's interval lies under those of 0 and 1; variant 2 overlaps 1; 4 is alone
    assert rank_by_interval(lo, hi, component).tolist() == [1, 1, 2, 3, 1]


def test_study_ratings_order_variants_by_majority_wins():
    # given emu beats direct 8–0 and direct beats t2v 6–2 across prompts
    rows = []
    for p in range(8):
        rows += votes(p, p, ("emu", "direct"), "aaabb")
        rows += votes(100 + p, p, ("direct", "t2v"), "aaabb" if p < 6 else "aabbb")
    table = summarise(judgments(rows), rounds=200).ratings["quality"].set_index("variant")

    assert (
        table.loc["emu", "strength"]
        > table.loc["direct", "strength"]
        > table.loc["t2v", "strength"]
    )
    assert table.loc["emu", "rank"] == 1
    assert (table["strength_lo"] <= table["strength"]).all()
    assert (table["strength"] <= table["strength_hi"]).all()
