"""Seeded simulated studies with a known truth, for tests, benchmarks and the notebook.

Each prompt has its own chance that a rater prefers A, drawn from a Beta around the pair's
preference (prompts differ: that is why the bootstrap resamples prompts), and every comparison
gets `raters` independent votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from .frames import REASON_CODES


@dataclass(frozen=True)
class SimulatedPair:
    variant_a: str
    variant_b: str
    quality: float  # P(a rater prefers A), averaged over prompts
    faithfulness: float


def true_majority_win_rate(
    p: float, *, raters: int, concentration: float, tie_share: float = 0.0
) -> float:
    """P(a strict majority of `raters` prefers A) when P(prefer A) ~ Beta around p and each
    rater answers 'tie' with probability `tie_share` (as `simulate_judgments` draws them)."""
    a, b = concentration * p, concentration * (1 - p)
    # Raters who do not answer 'tie' are Binomial(raters, 1 - tie_share); among n of them the
    # votes for A are beta-binomial. A majority needs more than raters // 2 of all votes.
    return float(
        sum(
            sps.binom.pmf(n, raters, 1 - tie_share) * sps.betabinom.sf(raters // 2, n, a, b)
            for n in range(raters + 1)
        )
    )


def simulate_judgments(
    *,
    pairs: list[SimulatedPair],
    prompts: int,
    raters: int = 5,
    rater_pool: int = 50,
    concentration: float = 4.0,
    tie_share: float = 0.0,
    flagged_raters: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """A canonical judgments frame (reasons as masks): pairs × prompts comparisons × raters."""
    rng = np.random.default_rng(seed)
    n_pairs = len(pairs)
    comparisons = n_pairs * prompts
    pair_of = np.repeat(np.arange(n_pairs), prompts)
    prompt_of = np.tile(np.arange(prompts), n_pairs)
    judgment_comparison = np.repeat(np.arange(comparisons), raters)
    n = len(judgment_comparison)
    start = rng.integers(0, rater_pool, size=comparisons)
    rater = (np.repeat(start, raters) + np.tile(np.arange(raters), comparisons)) % rater_pool
    frame = pd.DataFrame(
        {
            "judgment_id": np.arange(1, n + 1),
            "comparison_id": judgment_comparison + 1,
            "prompt_id": prompt_of[judgment_comparison] + 1,
            "variant_a": np.asarray([p.variant_a for p in pairs])[pair_of][judgment_comparison],
            "variant_b": np.asarray([p.variant_b for p in pairs])[pair_of][judgment_comparison],
            "kind": "real",
            "rater": rater.astype(str),
            "left_is_a": rng.random(n) < 0.5,
            "time_spent_ms": rng.lognormal(np.log(20_000), 0.5, size=n).astype(np.int64),
            "is_flagged": rater < flagged_raters,
            "rater_is_flagged": rater < flagged_raters,
            "is_simulated": False,
            "judged_at": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.random(n)) * 72, unit="h"),
        }
    )
    for question in ("quality", "faithfulness"):
        p = np.asarray([getattr(pair, question) for pair in pairs])[pair_of]
        # Per prompt preference of each pair, Beta(κp, κ(1-p)): mean p, spread from κ.
        per_prompt = rng.beta(concentration * p, concentration * (1 - p))
        prefers_a = rng.random(n) < per_prompt[judgment_comparison]
        tie = rng.random(n) < tie_share
        choice = np.where(tie, "tie", np.where(prefers_a, "a", "b"))
        frame[question] = choice
        frame[f"{question}_reasons"] = _random_reasons(rng, question, choice)
    frame["pair"] = frame["variant_a"] + " vs " + frame["variant_b"]
    return frame


def _random_reasons(rng: np.random.Generator, question: str, choice: np.ndarray) -> np.ndarray:
    codes = REASON_CODES[question]
    tie_bits = [i for i, c in enumerate(codes) if c.startswith("equally")]
    choice_bits = [i for i in range(len(codes)) if i not in tie_bits]
    # Reason k is cited with probability falling in k, at least one always (JUICE).
    cite = rng.random((len(choice), len(choice_bits))) < 0.6 / (1 + np.arange(len(choice_bits)))
    first = rng.integers(0, len(choice_bits), size=len(choice))
    cite[np.arange(len(choice)), first] = True
    masks = (cite * (1 << np.asarray(choice_bits))).sum(axis=1)
    tie_masks = 1 << np.asarray(tie_bits)[rng.integers(0, len(tie_bits), size=len(choice))]
    return np.where(choice == "tie", tie_masks, masks).astype(np.int64)


@dataclass(frozen=True)
class AdaptiveRun:
    """One simulated adaptive study beside the full design it could have been."""

    judgments: int  # what the adaptive study collected
    full_judgments: int  # every slot of every comparison
    decisions: dict[tuple[int, str], str]  # (pair, question) → 'a' | 'b' | 'none'
    full_decisions: dict[tuple[int, str], str]

    @property
    def same_decisions(self) -> bool:
        return self.decisions == self.full_decisions

    @property
    def share(self) -> float:
        return self.judgments / self.full_judgments


def simulate_adaptive(
    *,
    pairs: list[SimulatedPair],
    prompts: int,
    raters: int = 5,
    concentration: float = 4.0,
    tie_share: float = 0.1,
    calibration_fraction: float = 0.2,
    target_ci_width: float = 0.2,
    seed: int = 0,
) -> AdaptiveRun:
    """An adaptive study served the way `raters.services` serves one, against the full design.

    One comparison per (pair, prompt), `raters` slots each, votes drawn once and shared by both
    designs. Calibration comparisons (every 1/fraction-th of a pair's) are filled first; then
    each judgment goes to the pair whose headline interval (`intervals.headline_width`, the
    wider question) is widest, to its comparison with the fewest judgments; the study stops
    when every pair is narrower than `target_ci_width`. A decision is the side whose majority
    wins more comparisons of the pair.
    """
    from .intervals import headline_width, majority_codes

    rng = np.random.default_rng(seed)
    n_pairs = len(pairs)
    questions = ("quality", "faithfulness")
    # votes[question][pair, prompt, slot] as 0 = a, 1 = b, 2 = tie
    votes = {}
    for question in questions:
        p = np.asarray([getattr(pair, question) for pair in pairs])[:, None, None]
        q = rng.beta(concentration * p, concentration * (1 - p), size=(n_pairs, prompts, 1))
        tie = rng.random((n_pairs, prompts, raters)) < tie_share
        votes[question] = np.where(tie, 2, (rng.random(tie.shape) >= q).astype(np.int64))
    step = max(1, round(1 / calibration_fraction)) if calibration_fraction > 0 else 0
    calibration = np.zeros(prompts, dtype=bool)
    if step:
        calibration[::step] = True
    filled = np.where(calibration, raters, 0)[None, :].repeat(n_pairs, axis=0)
    prompt_ids = np.arange(prompts)

    def counts(question: str, pair: int, used: np.ndarray) -> np.ndarray:
        slots = np.arange(raters)[None, :] < used[:, None]
        codes = votes[question][pair]
        return np.stack([((codes == c) & slots).sum(axis=1) for c in range(3)], axis=1)

    def width(pair: int) -> float:
        return max(
            headline_width(prompt_ids, counts(question, pair, filled[pair]))
            for question in questions
        )

    def decisions(used: np.ndarray) -> dict[tuple[int, str], str]:
        out = {}
        for pair in range(n_pairs):
            for question in questions:
                majority = majority_codes(counts(question, pair, used[pair]))
                a, b = int((majority == 0).sum()), int((majority == 1).sum())
                out[pair, question] = "a" if a > b else "b" if b > a else "none"
        return out

    widths = np.array([width(pair) for pair in range(n_pairs)])
    while not (widths < target_ci_width).all():
        open_pairs = (filled < raters).any(axis=1)
        if not open_pairs.any():
            break
        pair = int(np.argmax(np.where(open_pairs, widths, -1.0)))
        comparison = int(np.argmin(np.where(filled[pair] < raters, filled[pair], raters + 1)))
        filled[pair, comparison] += 1
        widths[pair] = width(pair)
    return AdaptiveRun(
        judgments=int(filled.sum()),
        full_judgments=n_pairs * prompts * raters,
        decisions=decisions(filled),
        full_decisions=decisions(np.full((n_pairs, prompts), raters)),
    )
