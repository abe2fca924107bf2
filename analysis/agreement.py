"""How much raters agree, and how well they do on quality-control items. Pure functions.

Fleiss' κ (statsmodels) needs the same number of ratings per item, so it is computed on the
comparisons that have the most common number of votes; Krippendorff's α takes any number of
votes per item (its nominal closed form, checked against the `krippendorff` package).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.inter_rater import fleiss_kappa as _statsmodels_fleiss_kappa

from .intervals import majority_codes
from .stats import majority_vote, sign_test, wilson_interval


def vote_table(frame: pd.DataFrame, *, question: str) -> np.ndarray:
    """(comparisons, 3) counts of votes for a, b, tie."""
    votes = majority_vote(frame, question=question)
    table: np.ndarray = votes[["votes_a", "votes_b", "votes_tie"]].to_numpy()
    return table


def fleiss_kappa(table: np.ndarray) -> tuple[float, int]:
    """κ over the items with the modal number of votes (≥ 2); returns (κ, items used)."""
    per_item = _row_sums(table)
    n = per_item[per_item >= 2]
    if len(n) == 0:
        return float("nan"), 0
    modal = np.bincount(n).argmax()
    used = table[per_item == modal]
    used = used[:, used.sum(axis=0) > 0]
    if used.shape[1] < 2:
        # Every vote the same: agreement is perfect but κ is 0/0.
        return float("nan"), len(used)
    return float(_statsmodels_fleiss_kappa(used, method="fleiss")), len(used)


def krippendorff_alpha(table: np.ndarray) -> float:
    """Nominal α from per-item value counts; items with fewer than 2 votes carry no pairs.

    For nominal values α needs only the diagonal of the coincidence matrix: with n_uc votes
    for value c in item u (m_u votes in all), o_cc = Σ_u n_uc (n_uc − 1) / (m_u − 1),
    n_c = Σ_u n_uc and n = Σ_c n_c, α = 1 − (n − 1)(n − Σ_c o_cc) / (n² − Σ_c n_c²). This is
    the `krippendorff` package's value (tests/analysis/test_agreement.py) without its
    (items × values × values) arrays: 49 MB at a million judgments, here a few.
    """
    pairable = np.asarray(table)[_row_sums(table) >= 2]
    if len(pairable) == 0 or (pairable.sum(axis=0) > 0).sum() < 2:
        return float("nan")
    counts = pairable.astype(np.float64)
    agreeing = float((_row_sums(counts * (counts - 1)) / (_row_sums(counts) - 1)).sum())
    per_value = counts.sum(axis=0)
    n = float(per_value.sum())
    return 1.0 - (n - 1) * (n - agreeing) / (n * n - float((per_value**2).sum()))


def _row_sums(table: np.ndarray) -> np.ndarray:
    """Per row, the sum of a few columns, added column by column: numpy's reductions along
    short rows are several times slower, at a few hundred thousand comparisons per call."""
    table = np.asarray(table)
    wide = np.int64 if table.dtype.kind in "biu" else np.float64  # no overflow of narrow counts
    total = table[:, 0].astype(wide)
    for k in range(1, table.shape[1]):
        total += table[:, k]
    return total


def majority_sizes(table: np.ndarray) -> pd.DataFrame:
    """How often each split occurs, e.g. 5–0, 4–1, 3–2 (ties counted as a third option)."""
    ordered = -np.sort(-table, axis=1)
    ordered = ordered[_row_sums(ordered) > 0]
    if len(ordered) == 0:
        return pd.DataFrame(columns=["split", "top", "count", "share"])
    # one integer per split (np.unique over rows sorts a million of them far more slowly)
    base = int(ordered.max()) + 1
    keys, counts = np.unique(
        (ordered[:, 0] * base + ordered[:, 1]) * base + ordered[:, 2], return_counts=True
    )
    splits = np.stack([keys // (base * base), keys // base % base, keys % base], axis=1)
    labels = ["–".join(str(v) for v in row[: max(2, int((row > 0).sum()))]) for row in splits]
    out = pd.DataFrame({"split": labels, "top": splits[:, 0], "count": counts})
    out["share"] = out["count"] / out["count"].sum()
    return out.sort_values(["top", "split"], ascending=[False, True]).reset_index(drop=True)


def rater_agreement(
    *,
    rater: np.ndarray,
    rater_labels: np.ndarray,
    own: np.ndarray,
    judgment_comparison: np.ndarray,
    votes: np.ndarray,
) -> pd.DataFrame:
    """Per rater: agreement with the majority, with and without the rater's own vote.

    One entry per judgment: `rater` indexes `rater_labels`, `own` is the judgment's choice
    (0 = a, 1 = b, 2 = tie) and `judgment_comparison` its row of `votes`, the (a, b, tie)
    counts per comparison. `agreement` counts judgments in comparisons that have a strict
    majority; `agreement_others` compares each vote with the strict majority of the other
    raters of that comparison, which a single rater cannot tilt towards themself.
    """
    own = np.asarray(own)
    table = np.asarray(votes).reshape(-1, 3)
    # Per comparison and possible own vote (a, b, tie), then looked up per judgment: a million
    # judgments share a few hundred thousand comparisons.
    majority = majority_codes(table)
    decided = majority < 3
    agrees_if = majority[:, None] == np.arange(3)
    others_decided_if = np.empty(table.shape, dtype=bool)
    others_agree_if = np.empty(table.shape, dtype=bool)
    for choice in range(3):
        # Leave one out: the comparison's counts minus this judgment's own vote.
        others = table.copy()
        others[:, choice] -= 1
        majority = majority_codes(others)
        others_decided_if[:, choice] = majority < 3
        others_agree_if[:, choice] = majority == choice
    # Indices in any integer type (the dashboard sends 8 and 32 bits); one boolean per judgment
    # at a time, and the raters of the judgments where it holds counted.
    comparison = np.asarray(judgment_comparison)
    rater = np.asarray(rater)
    size = len(rater_labels)
    counted = {
        name: np.bincount(rater[where], minlength=size).astype(np.int64)
        for name, where in (
            ("n", decided[comparison]),
            ("agree", agrees_if[comparison, own]),
            ("n_others", others_decided_if[comparison, own]),
            ("agree_others", others_agree_if[comparison, own]),
        )
    }
    out = pd.DataFrame({"rater": np.asarray(rater_labels, dtype=object), **counted})
    out = out.sort_values("rater", kind="stable").reset_index(drop=True)
    out["agreement"] = out["agree"] / out["n"].where(out["n"] > 0)
    out["agreement_others"] = out["agree_others"] / out["n_others"].where(out["n_others"] > 0)
    return out


def position_bias(*, left_won: int, decisive: int) -> dict[str, float]:
    """Share of decisive judgments won by the video shown on the left, with Wilson CI and p."""
    k, n = left_won, decisive
    lo, hi = wilson_interval(np.array([k]), np.array([n]))
    return {
        "left_share": k / n if n else float("nan"),
        "lo": float(lo[0]),
        "hi": float(hi[0]),
        "n": n,
        "p_value": float(sign_test(np.array([k]), np.array([n - k]))[0]),
    }


def gold_accuracy(frame: pd.DataFrame, *, question: str) -> dict[str, float] | None:
    """Share of gold judgments on `question` where the degraded side lost; None without any.

    The raters app marks each gold judgment (`gold_correct`) against the question the gold
    comparison tests (`gold_question`, quality when blank).
    """
    if "gold_correct" not in frame:
        return None
    gold = frame[(frame["kind"] == "gold") & frame["gold_correct"].notna()]
    if "gold_question" in frame:
        asked = gold["gold_question"].fillna("").replace("", "quality")
        gold = gold[asked == question]
    if gold.empty:
        return None
    k, n = int(gold["gold_correct"].astype(bool).sum()), len(gold)
    lo, hi = wilson_interval(np.array([k]), np.array([n]))
    return {"accuracy": k / n, "lo": float(lo[0]), "hi": float(hi[0]), "n": n}


def median_time_ms(frame: pd.DataFrame) -> float:
    return float(frame["time_spent_ms"].median()) if len(frame) else float("nan")
