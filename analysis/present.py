"""Numbers of a summary as the strings the dashboard shows. No Django."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .frames import QUESTIONS
from .intervals import HEADLINE_NAME, METHOD
from .summary import StudySummary, ablation_table, side_by_side


def dashboard_table(summary: StudySummary, unflagged: StudySummary) -> pd.DataFrame:
    """The ablation table with the unflagged-rater columns beside it."""
    return side_by_side(ablation_table(summary), ablation_table(unflagged))


def table_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict of display strings per variant pair."""
    rows = []
    for row in table.to_dict("records"):
        shown: dict[str, Any] = {
            "pair": row["pair"],
            "variant_a": row["variant_a"],
            "variant_b": row["variant_b"],
            "comparisons": row["comparisons"],
            "judgments": row["judgments"],
        }
        for question in QUESTIONS:
            shown[question] = {
                "rate": percent(row[f"{question}_win_rate"]),
                "ci": interval(row[f"{question}_lo"], row[f"{question}_hi"]),
                "wilson": interval(row[f"{question}_wilson_lo"], row[f"{question}_wilson_hi"]),
                "p": p_value(row[f"{question}_p_value"]),
                "kappa": number(row[f"{question}_kappa"]),
                "unflagged": percent(row.get(f"{question}_win_rate_unflagged", math.nan)),
                "unflagged_ci": interval(
                    row.get(f"{question}_lo_unflagged", math.nan),
                    row.get(f"{question}_hi_unflagged", math.nan),
                ),
            }
        shown["judgments_unflagged"] = row.get("judgments_unflagged", "")
        rows.append(shown)
    return rows


def agreement_rows(agreement: pd.DataFrame) -> list[dict[str, Any]]:
    """Agreement per question, with κ as text and a note saying why it is missing."""
    rows = []
    for row in agreement.to_dict("records"):
        items = int(row["kappa_items"])
        if items == 0:
            text, note = "–", "needs ≥ 2 raters per comparison"
        elif _missing(row["fleiss_kappa"]):
            text, note = "–", "every vote the same: κ is undefined"
        else:
            text = f"{row['fleiss_kappa']:.3f}"
            note = f"{items} comparison{'' if items == 1 else 's'}"
        alpha = "–" if _missing(row["krippendorff_alpha"]) else f"{row['krippendorff_alpha']:.3f}"
        rows.append({**row, "kappa_text": text, "kappa_note": note, "alpha_text": alpha})
    return rows


def percent(value: float) -> str:
    return "–" if _missing(value) else f"{100 * value:.1f}"


def interval(lo: float, hi: float) -> str:
    return "" if _missing(lo) or _missing(hi) else f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def number(value: float, digits: int = 2) -> str:
    return "–" if _missing(value) else f"{value:.{digits}f}"


def p_value(value: float) -> str:
    if _missing(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _missing(value: Any) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def terminal_report(table: pd.DataFrame, ratings: pd.DataFrame) -> str:
    """`export_results --summary` on a terminal: one short line per pair, then the ratings."""
    if table.empty:
        return "No judgments yet."
    lines = [f"Q, F: {HEADLINE_NAME} of A in %, with its 95% {METHOD}."]
    rows = []
    for row in table.to_dict("records"):
        shown = {
            "study": row.get("study", ""),
            "A (design)": row["variant_a"],
            "B": row["variant_b"],
            "comparisons": str(int(row["comparisons"])),
        }
        for question in QUESTIONS:
            name = question[0].upper()
            shown[name] = percent(row[f"{question}_win_rate"])
            shown[f"{name} 95% CI"] = interval(row[f"{question}_lo"], row[f"{question}_hi"])
            shown[f"{name} unflagged"] = percent(
                row.get(f"{question}_win_rate_unflagged", math.nan)
            )
        rows.append(shown)
    lines.append(_aligned(rows))
    if not ratings.empty:
        lines += ["", "Bradley–Terry–Davidson strengths (log scale, 95% bootstrap interval):"]
        rated = [
            {
                "study": row.get("study", ""),
                "question": row["question"],
                "rank": str(row["rank"]),
                "variant": row["variant"],
                "strength": number(row["strength"]),
                "95% CI": f"[{number(row['strength_lo'])}, {number(row['strength_hi'])}]",
            }
            for row in ratings.to_dict("records")
        ]
        lines.append(_aligned(rated))
    return "\n".join(lines)


def _aligned(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    header = "  ".join(c.ljust(widths[c]) for c in columns).rstrip()
    body = ["  ".join(str(r[c]).ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join([header, *body])
