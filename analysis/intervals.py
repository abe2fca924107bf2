"""The headline interval: a Wilson score interval whose sample size is discounted by prompts.

Comparisons of one prompt are not independent (a hard prompt is hard for every variant pair
and every sample), so the unit of evidence is the prompt. The interval is

    n_eff = n / deff,   deff = max(1, V_prompt / (p̂ (1 − p̂) / n)),
    V_prompt = K / (K − 1) · Σ_k (y_k − p̂ m_k)² / n²

where prompt k holds m_k comparisons of which y_k were won by A, n = Σ m_k, K prompts and
p̂ = Σ y_k / n: the Wilson score interval for p̂ with n_eff in place of n. V_prompt is the
cluster-robust (linearised ratio) variance with its small-sample factor K / (K − 1); the design
effect is floored at 1, so clustering can only widen the interval (Korn and Graubard's rule for
proportions from clustered samples). Unlike a percentile bootstrap, whose interval behaves like
the Wald interval and covered the truth only 0.928 of the time at 80 prompts, the score
interval keeps its coverage near the nominal level at a few dozen prompts and at rates near 0
or 1 (see tests/analysis/test_coverage.py).

NumPy and the standard library only: the adaptive assignment of raters (a web request) calls
this module without paying for pandas or scipy.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

METHOD = "prompt-clustered Wilson score interval"


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def clustered_wilson(
    wins: np.ndarray, comparisons: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of Σ wins / Σ comparisons per column, from (prompts, columns) counts.

    `wins[k, c]` and `comparisons[k, c]` are prompt k's counts for column c (one column per
    variant pair, say). Columns without comparisons get NaN bounds.
    """
    y = np.atleast_2d(np.asarray(wins, dtype=float))
    m = np.atleast_2d(np.asarray(comparisons, dtype=float))
    n = m.sum(axis=0)
    prompts = (m > 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, y.sum(axis=0) / np.where(n > 0, n, 1), np.nan)
        residual = ((y - p * m) ** 2).sum(axis=0)
        v_prompt = prompts / np.maximum(prompts - 1, 1) * residual / n**2
        v_binomial = p * (1 - p) / n
        deff = np.where(v_binomial > 0, v_prompt / np.where(v_binomial > 0, v_binomial, 1), 1.0)
        n_eff = n / np.maximum(deff, 1.0)
    return wilson(p, n_eff, confidence=confidence)


def wilson(
    p: np.ndarray, n: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a share `p` observed over `n` (possibly fractional) trials."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    ok = n > 0
    return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


def majority_codes(votes: np.ndarray) -> np.ndarray:
    """Per comparison, from (comparisons, 3) votes for A, B, tie: 0 = A, 1 = B, 2 = tie,
    3 = no strict majority. The headline counts only code 0 as a win for A."""
    counts = np.atleast_2d(np.asarray(votes))
    # column by column: numpy's reductions along rows of three are ten times slower
    a, b, tie = (counts[:, k] for k in range(3))
    total = a + b + tie
    return np.where(
        total <= 0,
        3,
        np.where(2 * a > total, 0, np.where(2 * b > total, 1, np.where(2 * tie > total, 2, 3))),
    )


def headline_width(prompt_ids: ArrayLike, votes: ArrayLike, *, confidence: float = 0.95) -> float:
    """Width of the headline interval of one pair and question, from its comparisons.

    `prompt_ids` names each comparison's prompt; `votes` is (comparisons, 3). 1.0 when the
    pair has no votes yet (nothing is known).
    """
    votes = np.asarray(votes).reshape(-1, 3)
    judged = votes.sum(axis=1) > 0
    if not judged.any():
        return 1.0
    prompt, _ = _codes(np.asarray(prompt_ids)[judged])
    won = (majority_codes(votes[judged]) == 0).astype(float)
    k = int(prompt.max()) + 1
    lo, hi = clustered_wilson(
        np.bincount(prompt, weights=won, minlength=k)[:, None],
        np.bincount(prompt, minlength=k).astype(float)[:, None],
        confidence=confidence,
    )
    return float(hi[0] - lo[0])


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), uniques


HEADLINE_NAME = "win rate (share of majority votes)"
HEADLINE_DEFINITION = (
    "Win rate of A = the share of real comparisons whose strict majority of raters preferred A: "
    "(comparisons with more than half of their votes for A) / (all real comparisons of the "
    "pair). Comparisons whose majority chose a tie, or that have no strict majority, count in "
    "the denominator and not as wins. 95% interval: " + METHOD + " (prompts as clusters)."
)
JUDGMENT_SHARE_LABEL = "share of judgments, ties half"
