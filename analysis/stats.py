"""Statistics on judgment DataFrames: pure functions, no Django."""

from __future__ import annotations

import pandas as pd

QUESTIONS: tuple[str, ...] = ("quality", "faithfulness")


def pair_win_rates(judgments: pd.DataFrame) -> pd.DataFrame:
    """Per (variant_a, variant_b): judgments, and A's share of wins per question (ties count half).

    Columns of `judgments`: variant_a, variant_b, quality, faithfulness (each 'a', 'b' or 'tie').
    """
    columns = ["variant_a", "variant_b", "n"] + [f"{q}_win_rate_a" for q in QUESTIONS]
    if judgments.empty:
        return pd.DataFrame(columns=columns)
    scored = judgments[["variant_a", "variant_b"]].copy()
    for question in QUESTIONS:
        scored[question] = judgments[question].map({"a": 1.0, "b": 0.0, "tie": 0.5})
    grouped = scored.groupby(["variant_a", "variant_b"], sort=True)
    summary = grouped.agg(
        n=("quality", "size"),
        **{f"{q}_win_rate_a": (q, "mean") for q in QUESTIONS},
    )
    return summary.reset_index()[columns]
