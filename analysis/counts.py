"""Every count a study summary is a ratio of, from one pass over the judgments. No Django.

`study_counts` reduces the canonical judgments frame (`frames.prepare`) to per-comparison vote
and reason counts, per-rater agreement counts, position-bias counts and the few study totals;
`summary.summarise_counts` computes every statistic from them. A million judgments become about
200,000 comparisons here, and nothing after this module reads single judgments again.

The frame may hold the choices as strings or as categoricals over `frames.CHOICES`, the rater
and pair columns as strings, integers or categoricals, and ids and masks in 32 or 64 bits
(`queries.summary_frame` sends the lean kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import agreement
from .frames import QUESTIONS, REASON_CODES
from .intervals import majority_codes
from .stats import choice_codes

_SIDES = 2  # a, b: the sides a majority can choose


@dataclass(frozen=True)
class QuestionCounts:
    """One question's counts; comparisons in the order of `StudyCounts.comparison_id`."""

    votes: np.ndarray  # (comparisons, 3) int32: votes for a, b, tie
    # (comparisons, 2, reasons), unsigned, as narrow as the largest count allows: judgments
    # for a (b) citing each reason
    side_reasons: np.ndarray
    raters: pd.DataFrame  # `agreement.rater_agreement`'s table
    left_won: int  # decisive judgments won by the video shown on the left
    decisive: int
    gold: dict[str, float] | None  # `agreement.gold_accuracy`

    @property
    def majority(self) -> np.ndarray:
        return majority_codes(self.votes)


@dataclass(frozen=True)
class StudyCounts:
    """A study's judgments reduced to what its summary needs."""

    comparison_id: np.ndarray  # sorted
    pair_index: np.ndarray  # per comparison, into `pairs`
    prompt_index: np.ndarray  # per comparison; prompts in order of first judgment
    n_prompts: int
    pairs: pd.Index  # 'A vs B' labels, sorted
    pair_variants: pd.DataFrame  # variant_a, variant_b per pair, indexed like `pairs`
    questions: dict[str, QuestionCounts]
    totals: dict[str, float]
    progress: pd.DataFrame


def study_counts(
    frame: pd.DataFrame, *, include_simulated: bool = False, without_flagged: bool = False
) -> StudyCounts:
    """The counts of a canonical judgments frame: real comparisons for the results, gold and
    mirrored ones for quality control, simulated judgments only when asked for.

    `without_flagged` counts as `frames.without_flagged(frame)` would, without copying it.
    """
    n = len(frame)
    kept = np.ones(n, dtype=bool)
    if not include_simulated:
        kept &= ~frame["is_simulated"].to_numpy(dtype=bool)
    if without_flagged:
        kept &= ~(
            frame["is_flagged"].to_numpy(dtype=bool)
            | frame["rater_is_flagged"].to_numpy(dtype=bool)
        )
    kind = frame["kind"]
    real_rows = np.flatnonzero(kept & (kind == "real").to_numpy(dtype=bool))
    # Per-judgment arrays stay in 8 or 32 bits, and each lives only as long as it is needed:
    # the dashboard counts a million judgments twice within its memory budget.

    def real(column: str) -> np.ndarray:
        return np.asarray(frame[column].to_numpy()[real_rows])

    def codes_of(values: Any, *, sort: bool) -> tuple[np.ndarray, Any]:
        codes, uniques = pd.factorize(values, sort=sort)
        return codes.astype(np.int32), uniques

    comparison, comparison_ids = codes_of(real("comparison_id"), sort=True)
    n_comparisons = len(comparison_ids)
    # prompt and pair are the same for every judgment of a comparison: any one of them will do
    prompt, prompts = codes_of(real("prompt_id"), sort=False)
    prompt_index = np.zeros(n_comparisons, dtype=np.int64)
    prompt_index[comparison] = prompt
    del prompt
    pair, pairs = codes_of(frame["pair"].iloc[real_rows], sort=True)
    pairs = pd.Index(np.asarray(pairs, dtype=object), name="pair")
    n_pairs = len(pairs)
    pair_index = np.zeros(n_comparisons, dtype=np.int64)
    pair_index[comparison] = pair
    one_of_pair = np.zeros(n_pairs, dtype=np.int64)
    one_of_pair[pair] = real_rows
    del pair
    pair_variants = pd.DataFrame(
        {
            "variant_a": frame["variant_a"].iloc[one_of_pair].to_numpy().astype(str),
            "variant_b": frame["variant_b"].iloc[one_of_pair].to_numpy().astype(str),
        },
        index=pairs,
    )
    rater, rater_ids = codes_of(real("rater"), sort=False)
    rater_labels = np.asarray(rater_ids).astype(str)
    left_is_a = real("left_is_a").astype(bool)
    gold_rows = frame.iloc[np.flatnonzero(kept & (kind == "gold").to_numpy(dtype=bool))]

    questions = {}
    for question in QUESTIONS:
        codes = choice_codes(frame[question].iloc[real_rows]).astype(np.int8)
        votes = np.bincount(
            comparison.astype(np.int64) * 3 + codes, minlength=3 * n_comparisons
        ).reshape(n_comparisons, 3)
        most = int(votes.max()) if votes.size else 0  # a comparison's votes for one side, at most
        votes = votes.astype(np.int32)
        decisive = codes < 2
        slot = comparison[decisive].astype(np.int64) * _SIDES + codes[decisive]
        masks = real(f"{question}_reasons")[decisive]
        n_reasons = len(REASON_CODES[question])
        # at most one per judgment of the comparison that chose that side: the narrowest type
        # that holds `most`
        side_reasons = np.empty((_SIDES * n_comparisons, n_reasons), dtype=np.min_scalar_type(most))
        for bit in range(n_reasons):
            cited = slot[(masks >> bit) & 1 != 0]
            side_reasons[:, bit] = np.bincount(cited, minlength=_SIDES * n_comparisons)
        del slot, masks
        left_won = decisive & ((codes == 0) == left_is_a)
        questions[question] = QuestionCounts(
            votes=votes,
            side_reasons=side_reasons.reshape(n_comparisons, _SIDES, n_reasons),
            raters=agreement.rater_agreement(
                rater=rater,
                rater_labels=rater_labels,
                own=codes,
                judgment_comparison=comparison,
                votes=votes,
            ),
            left_won=int(left_won.sum()),
            decisive=int(decisive.sum()),
            gold=agreement.gold_accuracy(gold_rows, question=question),
        )
    time_spent = real("time_spent_ms")
    totals: dict[str, float] = {
        "judgments": len(real_rows),
        "comparisons": n_comparisons,
        "prompts": len(prompts),
        "raters": len(rater_ids),
        "qc_judgments": int(kept.sum()) - len(real_rows),
        "median_time_ms": float(np.median(time_spent)) if len(time_spent) else float("nan"),
    }
    return StudyCounts(
        comparison_id=np.asarray(comparison_ids),
        pair_index=pair_index,
        prompt_index=prompt_index,
        n_prompts=len(prompts),
        pairs=pairs,
        pair_variants=pair_variants,
        questions=questions,
        totals=totals,
        progress=progress(frame["judged_at"].iloc[np.flatnonzero(kept)]),
    )


def progress(stamps: pd.Series) -> pd.DataFrame:
    """Judgments per hour (per day past two weeks), with the running total."""
    stamps = stamps.dropna()
    if stamps.empty:
        return pd.DataFrame(columns=["time", "judgments", "cumulative"])
    span = stamps.max() - stamps.min()
    unit = "D" if span > pd.Timedelta(days=14) else "h"
    counts = stamps.dt.floor(unit).value_counts().sort_index()
    return pd.DataFrame(
        {"time": counts.index, "judgments": counts.to_numpy(), "cumulative": counts.cumsum()}
    ).reset_index(drop=True)
