"""The study summary behind the ablation table, its figures and its exports.

`counts.study_counts` reduces the judgments to per-comparison counts once; from them one pass
builds, per prompt, every count a headline number is a ratio of (majority votes, single
judgments, reasons behind wins, per pair and question), and one bootstrap over prompts gives
the other confidence intervals and the Bradley–Terry refits together. The headline interval is
`intervals.clustered_wilson` on the same per-prompt counts. `summarise` takes the judgments
frame; `summarise_counts` takes counts (the dashboard counts its lean frame twice, with and
without flagged raters, without copying it).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import agreement, intervals, metrics, ratings
from .counts import QuestionCounts, StudyCounts, study_counts
from .frames import QUESTIONS, REASON_CODES, REASON_LABELS, without_flagged
from .stats import (
    MAJORITY_LABELS,
    bootstrap_sums_many,
    percentile_interval,
    ratio,
    sign_test,
    wilson_interval,
)

# Per pair and question, the comparison-level counts.
_COUNTS = ("comparisons", "majority_a", "majority_b", "majority_tie", "votes", "judgment_score_a")
_SIDES = ("a", "b")


@dataclass(frozen=True)
class StudySummary:
    """Every number of the dashboard; DataFrames in long form, ready to pivot or plot."""

    win_rates: pd.DataFrame
    reasons: pd.DataFrame
    ratings: dict[str, pd.DataFrame]
    agreement: pd.DataFrame
    majority_sizes: pd.DataFrame
    raters: pd.DataFrame
    position_bias: pd.DataFrame
    metric_pairs: pd.DataFrame
    metric_correlation: pd.DataFrame
    progress: pd.DataFrame
    totals: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    confidence: float = 0.95


def summarise(
    frame: pd.DataFrame,
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    include_simulated: bool = False,
    scores: pd.DataFrame | None = None,
) -> StudySummary:
    """All headline numbers of a study from its canonical judgments frame (`frames.prepare`)."""
    return summarise_counts(
        study_counts(frame, include_simulated=include_simulated),
        rounds=rounds,
        seed=seed,
        confidence=confidence,
        scores=scores,
    )


def summarise_counts(
    counts: StudyCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    scores: pd.DataFrame | None = None,
) -> StudySummary:
    """All headline numbers of a study from its counts (`counts.study_counts`)."""
    (summary,) = summarise_many(
        [counts], rounds=rounds, seed=seed, confidence=confidence, scores=scores
    )
    return summary


def summarise_many(
    many: Sequence[StudyCounts],
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    scores: pd.DataFrame | None = None,
) -> list[StudySummary]:
    """`summarise_counts` of each of `many` (the dashboard's: with and without flagged raters),
    each the same numbers as alone, computed together: counts over the same number of prompts
    share one bootstrap (the same draws they would each make alone, one product over their
    columns side by side), and the rest runs on one thread per summary (numpy lets go of the
    GIL for much of it, and the second core would otherwise wait)."""
    matrices, prepared = zip(*(_per_prompt(counts) for counts in many), strict=True)
    resampled: dict[int, np.ndarray] = {}
    for n_prompts in dict.fromkeys(len(matrix) for matrix in matrices):
        group = [k for k, matrix in enumerate(matrices) if len(matrix) == n_prompts]
        if rounds:
            sums = bootstrap_sums_many([matrices[k] for k in group], rounds=rounds, seed=seed)
        else:
            sums = [np.zeros((0, matrices[k].shape[1])) for k in group]
        resampled.update(zip(group, sums, strict=True))
    del matrices  # the rest reads only the totals and the headline's columns

    def finish(k: int) -> StudySummary:
        return _summary(many[k], prepared[k], resampled[k], rounds, confidence, scores)

    if len(many) < 2:
        return [finish(k) for k in range(len(many))]
    with ThreadPoolExecutor(max_workers=len(many) - 1, thread_name_prefix="summary") as pool:
        others = [pool.submit(finish, k) for k in range(1, len(many))]
        first = finish(0)
        return [first, *(other.result() for other in others)]


@dataclass(frozen=True)
class _PerPrompt:
    """What one summary keeps of its per-prompt sums once they are bootstrapped: their totals
    and the two columns the headline interval reads, with the decisive majorities per
    comparison and question."""

    layout: _Layout
    observed: np.ndarray  # (1, width), float64
    headline: dict[str, tuple[np.ndarray, np.ndarray]]  # majority_a, comparisons: prompts × pairs
    majorities: pd.DataFrame


def _per_prompt(counts: StudyCounts) -> tuple[np.ndarray, _PerPrompt]:
    """The per-prompt sums of every count (prompts × `_Layout.width`), and what is kept of them."""
    pairs = counts.pairs
    n_pairs, n_prompts = len(pairs), max(counts.n_prompts, 1)
    layout = _Layout(n_pairs=n_pairs)
    # float32 holds every count exactly (whole and half numbers below 2**23) at half the memory,
    # and is what the bootstrap's products take.
    per_prompt = np.zeros((n_prompts, layout.width), dtype=np.float32)
    key = _cell_key(counts)
    majorities = []
    for question, got in counts.questions.items():
        majority = got.majority
        _add_counts(per_prompt, got.votes, majority, key, layout, question)
        _add_reasons(per_prompt, got, majority, key, layout, question)
        # Only decisive majorities can agree or disagree with a metric: the others are left
        # out here, and the labels are categoricals rather than a string per comparison.
        decided = np.flatnonzero(majority < len(_SIDES))
        majorities.append(
            pd.DataFrame(
                {
                    "comparison_id": counts.comparison_id[decided],
                    "pair": pd.Categorical.from_codes(
                        counts.pair_index[decided], categories=np.asarray(pairs, dtype=object)
                    ),
                    "question": pd.Categorical.from_codes(
                        np.full(len(decided), QUESTIONS.index(question)), categories=QUESTIONS
                    ),
                    "majority": pd.Categorical.from_codes(
                        majority[decided], categories=MAJORITY_LABELS
                    ),
                }
            )
        )
    return per_prompt, _PerPrompt(
        layout=layout,
        observed=per_prompt.sum(axis=0, keepdims=True, dtype=np.float64),
        headline={
            question: (
                per_prompt[:, layout.counts(question, "majority_a")].astype(np.float64),
                per_prompt[:, layout.counts(question, "comparisons")].astype(np.float64),
            )
            for question in QUESTIONS
        },
        majorities=pd.concat(majorities, ignore_index=True),
    )


def _summary(
    counts: StudyCounts,
    prepared: _PerPrompt,
    resampled: np.ndarray,
    rounds: int,
    confidence: float,
    scores: pd.DataFrame | None,
) -> StudySummary:
    """The summary from its per-prompt counts and their bootstrap sums."""
    pairs, pair_variants, layout = counts.pairs, counts.pair_variants, prepared.layout
    # Row 0 the data, rows 1.. the bootstrap rounds.
    sums = np.vstack([prepared.observed, resampled])

    win_rates = _win_rates(sums, prepared.headline, layout, counts, confidence)
    reasons = _reasons(sums, layout, pairs, confidence)
    rating_tables = {q: _ratings(sums, layout, pair_variants, q, confidence) for q in QUESTIONS}
    metric_pairs, metric_correlation = metrics.metric_agreement(
        prepared.majorities, scores if scores is not None else pd.DataFrame()
    )
    agreement_rows, sizes, raters, bias = [], [], [], []
    for question, got in counts.questions.items():
        kappa, kappa_items = agreement.fleiss_kappa(got.votes)
        agreement_rows.append(
            {
                "question": question,
                "fleiss_kappa": kappa,
                "kappa_items": kappa_items,
                "krippendorff_alpha": agreement.krippendorff_alpha(got.votes),
                "gold_accuracy": got.gold["accuracy"] if got.gold else np.nan,
                "gold_n": got.gold["n"] if got.gold else 0,
            }
        )
        sizes.append(agreement.majority_sizes(got.votes).assign(question=question))
        raters.append(got.raters.assign(question=question))
        bias.append(
            {
                "question": question,
                **agreement.position_bias(left_won=got.left_won, decisive=got.decisive),
            }
        )
    return StudySummary(
        win_rates=win_rates,
        reasons=reasons,
        ratings=rating_tables,
        agreement=pd.DataFrame(agreement_rows),
        majority_sizes=pd.concat(sizes, ignore_index=True),
        raters=pd.concat(raters, ignore_index=True),
        position_bias=pd.DataFrame(bias),
        metric_pairs=metric_pairs,
        metric_correlation=metric_correlation,
        progress=counts.progress,
        totals=dict(counts.totals),
        rounds=rounds,
        confidence=confidence,
    )


def ablation_table(summary: StudySummary) -> pd.DataFrame:
    """One row per variant pair: Q and F win rate (share of majority votes) with CIs, n, κ."""
    columns = ("win_rate", "lo", "hi", "wilson_lo", "wilson_hi", "p_value", "kappa")
    if summary.win_rates.empty:
        names = ["pair", "variant_a", "variant_b", "comparisons", "judgments"]
        return pd.DataFrame(columns=names + [f"{q}_{c}" for q in QUESTIONS for c in columns])
    wide = summary.win_rates.pivot(index="pair", columns="question")
    out = pd.DataFrame(index=wide.index)
    first = QUESTIONS[0]
    out["variant_a"] = wide[("variant_a", first)]
    out["variant_b"] = wide[("variant_b", first)]
    out["comparisons"] = wide[("comparisons", first)].astype(int)
    out["judgments"] = wide[("judgments", first)].astype(int)
    for question in QUESTIONS:
        for column in columns:
            out[f"{question}_{column}"] = wide[(column, question)]
    return out.reset_index()


def sensitivity_table(
    frame: pd.DataFrame, *, rounds: int = 1000, seed: int = 0, include_simulated: bool = False
) -> pd.DataFrame:
    """The ablation table with and without flagged raters, side by side."""
    every = summarise(frame, rounds=rounds, seed=seed, include_simulated=include_simulated)
    kept = summarise(
        without_flagged(frame), rounds=rounds, seed=seed, include_simulated=include_simulated
    )
    return side_by_side(ablation_table(every), ablation_table(kept))


def side_by_side(every: pd.DataFrame, unflagged: pd.DataFrame) -> pd.DataFrame:
    """Columns of the unflagged table next to the full one, suffixed `_unflagged`."""
    return every.merge(
        unflagged.drop(columns=["variant_a", "variant_b"]),
        on="pair",
        how="left",
        suffixes=("", "_unflagged"),
    )


class _Layout:
    """Column offsets of the per-prompt count matrix."""

    def __init__(self, *, n_pairs: int) -> None:
        self.n_pairs = n_pairs
        self.offsets: dict[str, int] = {}
        width = 0
        for question in QUESTIONS:
            self.offsets[f"counts:{question}"] = width
            width += n_pairs * len(_COUNTS)
            self.offsets[f"reasons:{question}"] = width
            width += n_pairs * len(_SIDES) * (1 + len(REASON_CODES[question]))
        self.width = width

    def counts(self, question: str, name: str) -> np.ndarray:
        base = self.offsets[f"counts:{question}"] + _COUNTS.index(name)
        return base + np.arange(self.n_pairs) * len(_COUNTS)

    def reason_block(self, question: str) -> int:
        return 1 + len(REASON_CODES[question])

    def reasons(self, question: str, side: int, reason: int | None) -> np.ndarray:
        """Columns per pair: the number of winning judgments (reason None) or those citing it."""
        block = self.reason_block(question)
        base = self.offsets[f"reasons:{question}"] + side * block
        base += 0 if reason is None else 1 + reason
        return base + np.arange(self.n_pairs) * len(_SIDES) * block


def _by_prompt(per_prompt: np.ndarray, layout: _Layout, values: Any, key: np.ndarray) -> np.ndarray:
    """(prompts, pairs) sums of per-comparison `values`, each added to the cell its `key`
    names (`_cell_key`, or the part of it for the comparisons `values` are of)."""
    shape = (len(per_prompt), layout.n_pairs)
    sums = np.bincount(key, weights=np.asarray(values, dtype=float), minlength=shape[0] * shape[1])
    return sums.reshape(shape)


def _cell_key(counts: StudyCounts) -> np.ndarray:
    """Per comparison, its (prompt, pair) cell of the per-prompt matrix, as one integer."""
    return np.asarray(counts.prompt_index * len(counts.pairs) + counts.pair_index)


def _add_counts(
    per_prompt: np.ndarray,
    votes: np.ndarray,
    majority: np.ndarray,
    key: np.ndarray,
    layout: _Layout,
    question: str,
) -> None:
    a, b, tie = (votes[:, k] for k in range(3))
    values = {
        "comparisons": np.ones(len(majority)),
        "majority_a": majority == 0,
        "majority_b": majority == 1,
        "majority_tie": majority == 2,
        "votes": a + b + tie,
        "judgment_score_a": a + 0.5 * tie,
    }
    for name, value in values.items():
        per_prompt[:, layout.counts(question, name)] = _by_prompt(per_prompt, layout, value, key)


def _add_reasons(
    per_prompt: np.ndarray,
    got: QuestionCounts,
    majority: np.ndarray,
    key: np.ndarray,
    layout: _Layout,
    question: str,
) -> None:
    # Fig. 6: reasons given by the judgments that make up a win (they agree with the majority).
    for side in range(len(_SIDES)):
        won = np.flatnonzero(majority == side)
        key_won = key[won]
        wins = got.votes[won, side]
        per_prompt[:, layout.reasons(question, side, None)] = _by_prompt(
            per_prompt, layout, wins, key_won
        )
        cited = got.side_reasons[won, side, :]
        for reason in range(cited.shape[1]):
            per_prompt[:, layout.reasons(question, side, reason)] = _by_prompt(
                per_prompt, layout, cited[:, reason], key_won
            )


def _win_rates(
    sums: np.ndarray,
    headline: dict[str, tuple[np.ndarray, np.ndarray]],
    layout: _Layout,
    counts: StudyCounts,
    confidence: float,
) -> pd.DataFrame:
    pairs, pair_variants = counts.pairs, counts.pair_variants
    frames = []
    for question in QUESTIONS:
        get = {name: sums[:, layout.counts(question, name)] for name in _COUNTS}
        share = ratio(get["majority_a"], get["comparisons"])
        per_judgment = ratio(get["judgment_score_a"], get["votes"])
        lo, hi = intervals.clustered_wilson(*headline[question], confidence=confidence)
        j_lo, j_hi = percentile_interval(per_judgment[1:], confidence=confidence)
        w_lo, w_hi = wilson_interval(
            get["majority_a"][0], get["comparisons"][0], confidence=confidence
        )
        votes = counts.questions[question].votes
        kappas = [
            agreement.fleiss_kappa(votes[counts.pair_index == g])[0] for g in range(len(pairs))
        ]
        frames.append(
            pd.DataFrame(
                {
                    "pair": pairs,
                    "variant_a": pair_variants["variant_a"].to_numpy(),
                    "variant_b": pair_variants["variant_b"].to_numpy(),
                    "question": question,
                    "comparisons": get["comparisons"][0],
                    "judgments": get["votes"][0],
                    "majority_a": get["majority_a"][0],
                    "majority_b": get["majority_b"][0],
                    "majority_tie": get["majority_tie"][0],
                    "no_majority": get["comparisons"][0]
                    - get["majority_a"][0]
                    - get["majority_b"][0]
                    - get["majority_tie"][0],
                    "win_rate": share[0],
                    "lo": lo,
                    "hi": hi,
                    "wilson_lo": w_lo,
                    "wilson_hi": w_hi,
                    "p_value": sign_test(get["majority_a"][0], get["majority_b"][0]),
                    "judgment_share_ties_half": per_judgment[0],
                    "judgment_share_lo": j_lo,
                    "judgment_share_hi": j_hi,
                    "kappa": kappas,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _reasons(sums: np.ndarray, layout: _Layout, pairs: pd.Index, confidence: float) -> pd.DataFrame:
    frames = []
    for question in QUESTIONS:
        for side, winner in enumerate(_SIDES):
            wins = sums[:, layout.reasons(question, side, None)]
            for r, code in enumerate(REASON_CODES[question]):
                cited = sums[:, layout.reasons(question, side, r)]
                share = ratio(cited, wins)
                lo, hi = percentile_interval(share[1:], confidence=confidence)
                frames.append(
                    pd.DataFrame(
                        {
                            "pair": pairs,
                            "question": question,
                            "winner": winner,
                            "reason": code,
                            "label": REASON_LABELS[code],
                            "winning_judgments": wins[0],
                            "cited": cited[0],
                            "share": share[0],
                            "lo": lo,
                            "hi": hi,
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ratings(
    sums: np.ndarray,
    layout: _Layout,
    pair_variants: pd.DataFrame,
    question: str,
    confidence: float,
) -> pd.DataFrame:
    items = sorted(set(pair_variants["variant_a"]) | set(pair_variants["variant_b"]))
    if not items:
        return pd.DataFrame(columns=["variant", "strength", "strength_lo", "strength_hi"])
    position = {name: k for k, name in enumerate(items)}
    i = pair_variants["variant_a"].map(position).to_numpy(np.int64)
    j = pair_variants["variant_b"].map(position).to_numpy(np.int64)
    get = {name: sums[:, layout.counts(question, name)] for name in _COUNTS}
    ties = get["comparisons"] - get["majority_a"] - get["majority_b"]  # tie or no majority
    return ratings.bradley_terry_table(
        items=items,
        i=i,
        j=j,
        wins_i=get["majority_a"],
        wins_j=get["majority_b"],
        ties=ties,
        confidence=confidence,
    ).assign(question=question)
