"""Win rates with honest uncertainty, as pure NumPy/pandas functions on the judgments frame.

The prompt is the unit of resampling (a study rates a few hundred prompts, with several raters
and comparisons per prompt): judgments of one prompt are not independent, so the bootstrap
draws prompts, and every statistic of a round is a ratio of sums that one matrix product gives
for all rounds at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from threadpoolctl import threadpool_limits

from .frames import CHOICES, QUESTIONS

# Majority codes: 0 = a, 1 = b, 2 = tie (most raters chose tie), 3 = none (no strict majority).
MAJORITY_LABELS: tuple[str, ...] = ("a", "b", "tie", "none")


@dataclass(frozen=True)
class Votes:
    """Per-comparison vote counts for one question, with each comparison's pair and prompt."""

    comparison_id: np.ndarray
    pair_index: np.ndarray
    prompt_index: np.ndarray
    counts: np.ndarray  # (comparisons, 3): votes for a, b, tie
    majority: np.ndarray  # codes into MAJORITY_LABELS
    judgment_comparison: np.ndarray  # comparison index of each judgment


def choice_codes(values: pd.Series) -> np.ndarray:
    """'a' | 'b' | 'tie' as 0 | 1 | 2."""
    codes: np.ndarray = pd.Categorical(values, categories=list(CHOICES)).codes.astype(np.int64)
    return codes


def count_votes(
    frame: pd.DataFrame, *, question: str, pair_index: np.ndarray, prompt_index: np.ndarray
) -> Votes:
    """Majority per comparison: the choice with more than half of its votes, else 'none'."""
    comparison, comparison_ids = pd.factorize(frame["comparison_id"], sort=True)
    n_comparisons = len(comparison_ids)
    codes = choice_codes(frame[question])
    counts = np.bincount(comparison * 3 + codes, minlength=3 * n_comparisons).reshape(-1, 3)
    top = counts.argmax(axis=1)
    strict = 2 * counts.max(axis=1) > counts.sum(axis=1)
    first = np.full(n_comparisons, len(frame), dtype=np.int64)
    np.minimum.at(first, comparison, np.arange(len(frame)))
    return Votes(
        comparison_id=np.asarray(comparison_ids),
        pair_index=np.asarray(pair_index)[first],
        prompt_index=np.asarray(prompt_index)[first],
        counts=counts,
        majority=np.where(strict, top, 3),
        judgment_comparison=comparison,
    )


def majority_vote(frame: pd.DataFrame, *, question: str) -> pd.DataFrame:
    """One row per comparison: vote counts, the majority and its size (ties/none kept)."""
    votes = count_votes(
        frame,
        question=question,
        pair_index=np.zeros(len(frame), dtype=np.int64),
        prompt_index=np.zeros(len(frame), dtype=np.int64),
    )
    return pd.DataFrame(
        {
            "comparison_id": votes.comparison_id,
            "votes_a": votes.counts[:, 0],
            "votes_b": votes.counts[:, 1],
            "votes_tie": votes.counts[:, 2],
            "n_votes": votes.counts.sum(axis=1),
            "majority": np.asarray(MAJORITY_LABELS)[votes.majority],
            "majority_size": votes.counts.max(axis=1),
        }
    )


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial share; NaN where n = 0."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = sps.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def sign_test(wins_a: np.ndarray, wins_b: np.ndarray) -> np.ndarray:
    """Two-sided binomial p-value of A's wins among decisive outcomes against 1/2."""
    a = np.asarray(wins_a, dtype=np.int64)
    n = a + np.asarray(wins_b, dtype=np.int64)
    low = np.minimum(a, n - a)
    with np.errstate(invalid="ignore"):
        p = np.minimum(1.0, 2 * sps.binom.cdf(low, n, 0.5))
    return np.where(n > 0, p, np.nan)


def bootstrap_weights(
    n_units: int, *, rounds: int, seed: int, chunk: int = 64
) -> Iterator[np.ndarray]:
    """How often each unit is drawn in each round (multinomial counts), `chunk` rounds at once.

    One count per round keeps the counting within the cache (a million-judgment study has
    40,000 prompts); the draws are the same as counting the whole chunk at once.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        draws = rng.integers(0, n_units, size=(r, n_units), dtype=np.int32)  # the same draws
        weights = np.empty((r, n_units), dtype=np.float32)
        for k in range(r):
            weights[k] = np.bincount(draws[k], minlength=n_units)
        yield weights


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: threadpool_limits | None = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while any caller is inside; the original setting back when the last
    one leaves. The dashboard summarises on two threads at once, and nested `threadpool_limits`
    blocks that end out of order would leave the process on one BLAS thread for good."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def bootstrap_sums(unit_sums: np.ndarray, *, rounds: int, seed: int, chunk: int = 64) -> np.ndarray:
    """(rounds, columns) sums over units resampled with replacement; `unit_sums` is per unit.

    The products run on one BLAS thread: on two shared cores OpenBLAS's threads wait on each
    other, and one thread was 10–15 times faster than two (benchmarks/bench_analysis.py).
    """
    (sums,) = bootstrap_sums_many([unit_sums], rounds=rounds, seed=seed, chunk=chunk)
    return sums


def bootstrap_sums_many(
    many: Sequence[np.ndarray], *, rounds: int, seed: int, chunk: int = 64
) -> list[np.ndarray]:
    """`bootstrap_sums` of each matrix of `many`, all over the same units: one set of draws
    serves them all, so each gets exactly what it would get alone."""
    xs = [np.asarray(unit_sums, dtype=np.float32) for unit_sums in many]
    n_units = {x.shape[0] for x in xs}
    if len(n_units) != 1:
        raise ValueError("the matrices must have one row per unit, the same units")
    outs = [np.empty((rounds, x.shape[1]), dtype=np.float64) for x in xs]
    chunks = bootstrap_weights(n_units.pop(), rounds=rounds, seed=seed, chunk=chunk)
    done = 0
    # The next chunk of draws is made on a second thread while this one multiplies (the
    # products let go of the GIL): the same draws in the same order, on both cores.
    with one_blas_thread(), ThreadPoolExecutor(max_workers=1) as pool:
        following = pool.submit(next, chunks, None)
        while (weights := following.result()) is not None:
            following = pool.submit(next, chunks, None)
            for x, out in zip(xs, outs, strict=True):
                out[done : done + len(weights)] = weights @ x
            done += len(weights)
    return outs


def percentile_interval(
    samples: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over axis 0, ignoring rounds where a share is undefined."""
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        empty = np.full(samples.shape[1], np.nan)
        return empty, empty.copy()
    tail = 100 * (1 - confidence) / 2
    # All-NaN columns (a share never defined) get NaN bounds, which is the honest answer. They
    # are left out of the reduction rather than silenced: swapping the process-wide warning
    # filters is not safe while another thread (the dashboard's recompute) runs this too.
    defined = ~np.isnan(samples).all(axis=0)
    lo = np.full(samples.shape[1], np.nan)
    hi = lo.copy()
    if defined.any():
        lo[defined], hi[defined] = np.nanpercentile(samples[:, defined], [tail, 100 - tail], axis=0)
    return lo, hi


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(denominator > 0, denominator, 1)
        return np.where(denominator > 0, numerator / safe, np.nan)


def pair_counts_summary(counts: pd.DataFrame) -> pd.DataFrame:
    """The quick summary `export_results` writes beside every export, from `pair_counts`.

    `{question}_win_rate` is the headline (share of comparisons won by A's majority) with a
    Wilson interval that treats comparisons as independent (the dashboard and `--summary`
    give the prompt-clustered one); `{question}_judgment_share_ties_half` is the share of
    single judgments preferring A, ties counted half.
    """
    out = counts[["variant_a", "variant_b", "comparisons", "n"]].rename(columns={"n": "judgments"})
    comparisons = counts["comparisons"].to_numpy(float)
    n = counts["n"].to_numpy(float)
    for question in QUESTIONS:
        won = counts[f"{question}_majority_a"].to_numpy(float)
        out[f"{question}_win_rate"] = ratio(won, comparisons)
        lo, hi = wilson_interval(won, comparisons)
        out[f"{question}_wilson_lo"] = lo
        out[f"{question}_wilson_hi"] = hi
        score = counts[f"{question}_a"].to_numpy(float) + 0.5 * counts[f"{question}_tie"]
        out[f"{question}_judgment_share_ties_half"] = ratio(score, n)
    return out.sort_values(["variant_a", "variant_b"]).reset_index(drop=True)
