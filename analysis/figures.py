"""Plotly figures of a study summary; built apart from the numbers, as FastChat does. No Django."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .frames import QUESTIONS
from .summary import StudySummary

QUESTION_NAMES = {"quality": "Quality (Q)", "faithfulness": "Faithfulness (F)"}
COLOURS = {"quality": "#3366cc", "faithfulness": "#dc7f1f"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=60), height=380)


def dashboard_figures(summary: StudySummary) -> dict[str, go.Figure]:
    """Every chart of the staff dashboard, keyed by a stable name."""
    return {
        "win_rates": win_rate_figure(summary.win_rates),
        "reasons": reasons_figure(summary.reasons),
        "heatmap": heatmap_figure(summary.win_rates),
        "ratings": ratings_figure(summary.ratings),
        "agreement": agreement_figure(summary.majority_sizes, summary.raters),
        "progress": progress_figure(summary.progress),
    }


def win_rate_figure(win_rates: pd.DataFrame) -> go.Figure:
    """The headline win rate of A per pair and question, with its 95% interval."""
    figure = go.Figure()
    for question in QUESTIONS:
        rows = win_rates[win_rates["question"] == question]
        figure.add_bar(
            name=QUESTION_NAMES[question],
            x=rows["pair"],
            y=100 * rows["win_rate"],
            marker_color=COLOURS[question],
            error_y=dict(
                type="data",
                array=100 * (rows["hi"] - rows["win_rate"]),
                arrayminus=100 * (rows["win_rate"] - rows["lo"]),
            ),
            customdata=np.stack([rows["comparisons"], 100 * rows["lo"], 100 * rows["hi"]], 1)
            if len(rows)
            else None,
            hovertemplate="%{x}<br>%{y:.1f}% [%{customdata[1]:.1f}, %{customdata[2]:.1f}]"
            "<br>n = %{customdata[0]} comparisons<extra></extra>",
        )
    figure.add_hline(y=50, line_dash="dot", line_color="grey")
    figure.update_layout(
        title="Win rate of A (% of majority votes, 95% CI)",
        barmode="group",
        yaxis=dict(title="% majority votes for A", range=[0, 100]),
        **_LAYOUT,
    )
    return figure


def reasons_figure(reasons: pd.DataFrame, *, winner: str = "a") -> go.Figure:
    """Paper Fig. 6: share of each reason among the judgments behind A's wins, per pair.

    Horizontal bars, one panel per question: reason labels are long and would overlap as
    tick labels under vertical bars.
    """
    figure = make_subplots(
        rows=len(QUESTIONS),
        cols=1,
        subplot_titles=[QUESTION_NAMES[q] for q in QUESTIONS],
        vertical_spacing=0.12,
    )
    if reasons.empty:
        figure.update_layout(title="Reasons behind wins", **_LAYOUT)
        return figure
    wins = reasons[(reasons["winner"] == winner) & ~reasons["reason"].str.startswith("equally")]
    for pair_number, (pair, rows) in enumerate(wins.groupby("pair", sort=True)):
        for row, question in enumerate(QUESTIONS, start=1):
            part = rows[rows["question"] == question]
            figure.add_bar(
                name=pair,
                legendgroup=pair,
                showlegend=row == 1,
                orientation="h",
                y=part["label"],
                x=100 * part["share"],
                marker_color=_palette(pair_number),
                error_x=dict(
                    type="data",
                    array=100 * (part["hi"] - part["share"]),
                    arrayminus=100 * (part["share"] - part["lo"]),
                ),
                row=row,
                col=1,
            )
    figure.update_xaxes(range=[0, 100])
    figure.update_xaxes(title_text="% of winning judgments citing it", row=len(QUESTIONS), col=1)
    figure.update_yaxes(automargin=True, autorange="reversed")
    layout = {**_LAYOUT, "height": 560}
    figure.update_layout(
        title=f"Reasons behind {winner.upper()}'s wins (Fig. 6)", barmode="group", **layout
    )
    return figure


def heatmap_figure(win_rates: pd.DataFrame) -> go.Figure:
    """Pairwise wins: cell (row, column) is the row variant's share of majority votes."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[QUESTION_NAMES[q] for q in QUESTIONS],
        shared_yaxes=True,
        horizontal_spacing=0.04,
    )
    variants = sorted(set(win_rates["variant_a"]) | set(win_rates["variant_b"]))
    for col, question in enumerate(QUESTIONS, start=1):
        rows = win_rates[win_rates["question"] == question]
        matrix = pd.DataFrame(np.nan, index=variants, columns=variants)
        for row in rows.itertuples():
            if row.comparisons:
                matrix.loc[row.variant_a, row.variant_b] = 100 * row.majority_a / row.comparisons
                matrix.loc[row.variant_b, row.variant_a] = 100 * row.majority_b / row.comparisons
        z = matrix.to_numpy(dtype=float)
        figure.add_heatmap(
            z=z,
            x=variants,
            y=variants,
            zmin=0,
            zmax=100,
            colorscale="RdBu",
            showscale=col == 2,
            text=np.where(np.isnan(z), "", np.char.mod("%.1f", np.nan_to_num(z))),
            texttemplate="%{text}",
            hovertemplate="%{y} over %{x}: %{z:.1f}%<extra></extra>",
            row=1,
            col=col,
        )
    figure.update_layout(title="Pairwise wins (% of majority votes, row over column)", **_LAYOUT)
    return figure


def ratings_figure(ratings: dict[str, pd.DataFrame]) -> go.Figure:
    """Bradley–Terry–Davidson log-strengths with bootstrap CIs and rank by CI."""
    figure = go.Figure()
    for question in QUESTIONS:
        table = ratings.get(question, pd.DataFrame())
        if table.empty:
            continue
        figure.add_scatter(
            name=QUESTION_NAMES[question],
            mode="markers",
            x=table["variant"],
            y=table["strength"],
            marker=dict(color=COLOURS[question], size=10),
            error_y=dict(
                type="data",
                array=table["strength_hi"] - table["strength"],
                arrayminus=table["strength"] - table["strength_lo"],
            ),
            text=[f"rank {r}" for r in table["rank"]],
            hovertemplate="%{x}: %{y:.2f} (%{text})<extra></extra>",
        )
    figure.update_layout(
        title="Bradley–Terry strengths (log scale, 95% CI)",
        yaxis_title="log-strength",
        **_LAYOUT,
    )
    return figure


def agreement_figure(majority_sizes: pd.DataFrame, raters: pd.DataFrame) -> go.Figure:
    """Majority splits (5–0, 4–1, 3–2, …) and each rater's agreement with the majority."""
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=["Majority splits", "Raters: agreement with the others"]
    )
    for question in QUESTIONS:
        sizes = majority_sizes[majority_sizes["question"] == question]
        figure.add_bar(
            name=QUESTION_NAMES[question],
            legendgroup=question,
            x=sizes["split"],
            y=100 * sizes["share"],
            marker_color=COLOURS[question],
            row=1,
            col=1,
        )
        # Leave-one-out, so a rater's own vote does not count as agreeing with itself.
        shares = raters.loc[raters["question"] == question, "agreement_others"].dropna()
        figure.add_histogram(
            name=QUESTION_NAMES[question],
            legendgroup=question,
            showlegend=False,
            x=100 * shares,
            xbins=dict(start=0, end=100, size=5),
            marker_color=COLOURS[question],
            opacity=0.7,
            row=1,
            col=2,
        )
    figure.update_yaxes(title_text="% of comparisons", row=1, col=1)
    figure.update_xaxes(title_text="% of a rater's votes with the others' majority", row=1, col=2)
    figure.update_yaxes(title_text="raters", row=1, col=2)
    figure.update_layout(title="Agreement", barmode="group", **_LAYOUT)
    return figure


def progress_figure(progress: pd.DataFrame) -> go.Figure:
    """Judgments per period (hour, or day past two weeks) and the running total.

    The time axis spans at least one period either side of the data: a study whose judgments
    all fall in one hour would otherwise be drawn on sub-millisecond ticks.
    """
    figure = go.Figure()
    period = _period(progress["time"])
    width_ms = 0.8 * period / pd.Timedelta(milliseconds=1)
    figure.add_bar(
        x=progress["time"],
        y=progress["judgments"],
        name="per period",
        opacity=0.5,
        width=[width_ms] * len(progress),
    )
    figure.add_scatter(
        x=progress["time"], y=progress["cumulative"], name="total", mode="lines+markers", yaxis="y2"
    )
    xaxis: dict[str, object] = dict(type="date", tickformat="%b %d\n%H:%M")
    if len(progress):
        start, end = progress["time"].min() - period, progress["time"].max() + period
        xaxis.update(range=[start.isoformat(), end.isoformat()])
    unit = "day" if period >= pd.Timedelta(days=1) else "hour"
    figure.update_layout(
        title=f"Judgments over time (per {unit})",
        xaxis=xaxis,
        yaxis=dict(title=f"judgments per {unit}", rangemode="tozero"),
        yaxis2=dict(title="total", overlaying="y", side="right", rangemode="tozero"),
        **_LAYOUT,
    )
    return figure


def _period(times: pd.Series) -> pd.Timedelta:
    steps = pd.Series(times).sort_values().diff().dropna()
    if steps.empty:
        return pd.Timedelta(hours=1)
    return pd.Timedelta(days=1) if steps.min() >= pd.Timedelta(days=1) else pd.Timedelta(hours=1)


def _palette(k: int) -> str:
    colours = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477"]
    return colours[k % len(colours)]
