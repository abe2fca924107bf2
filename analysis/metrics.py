"""Humans against automatic metrics (VBench-style): does the metric pick the human winner?

`scores` has one row per (comparison, metric) with the metric's value for video A and video B,
as `score_batch` stored them in `Video.scores`. Every numeric key present is compared with both
questions; which pairing is meaningful (e.g. faithfulness ↔ F) is for the reader to pick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

SCORE_COLUMNS: tuple[str, ...] = ("comparison_id", "metric", "score_a", "score_b")


def scores_from_json(records: pd.DataFrame) -> pd.DataFrame:
    """Long scores from rows of (comparison_id, scores_a: dict, scores_b: dict); numbers only."""
    rows = []
    for comparison_id, scores_a, scores_b in records[
        ["comparison_id", "scores_a", "scores_b"]
    ].itertuples(index=False):
        for key in sorted(set(scores_a or {}) & set(scores_b or {})):
            a, b = scores_a[key], scores_b[key]
            if _is_number(a) and _is_number(b):
                rows.append((comparison_id, key, float(a), float(b)))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def metric_agreement(
    majorities: pd.DataFrame, scores: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (metric, question, pair) agreement with the human majority; Spearman ρ across pairs.

    `majorities`: comparison_id, pair, question, majority ('a' | 'b' | 'tie' | 'none').
    Only comparisons with a decisive human majority and unequal scores count.
    """
    per_pair_columns = [
        "metric",
        "question",
        "pair",
        "n",
        "agreement",
        "human_win_rate",
        "metric_win_rate",
    ]
    correlation_columns = ["metric", "question", "pairs", "spearman_rho", "p_value"]
    if scores.empty or majorities.empty:
        return pd.DataFrame(columns=per_pair_columns), pd.DataFrame(columns=correlation_columns)
    merged = majorities.merge(scores, on="comparison_id", how="inner")
    merged = merged[merged["majority"].isin(["a", "b"]) & (merged["score_a"] != merged["score_b"])]
    merged = merged.assign(
        human_a=merged["majority"] == "a", metric_a=merged["score_a"] > merged["score_b"]
    )
    merged["agree"] = merged["human_a"] == merged["metric_a"]
    per_pair = (
        merged.groupby(["metric", "question", "pair"], sort=True, observed=True)
        .agg(
            n=("agree", "size"),
            agreement=("agree", "mean"),
            human_win_rate=("human_a", "mean"),
            metric_win_rate=("metric_a", "mean"),
        )
        .reset_index()
        .astype({"question": str, "pair": str})
    )
    rows = []
    for (metric, question), group in per_pair.groupby(
        ["metric", "question"], sort=True, observed=True
    ):
        rho, p = (np.nan, np.nan)
        constant = group["human_win_rate"].nunique() < 2 or group["metric_win_rate"].nunique() < 2
        if len(group) >= 3 and not constant:
            result = sps.spearmanr(group["human_win_rate"], group["metric_win_rate"])
            rho, p = float(result.statistic), float(result.pvalue)
        rows.append((metric, question, len(group), rho, p))
    return per_pair[per_pair_columns], pd.DataFrame(rows, columns=correlation_columns)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
