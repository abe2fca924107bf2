"""One self-contained HTML file per study: the ablation table, its charts, agreement and a
methods paragraph written from the study's own settings. No Django: the caller passes the
settings and the summaries; plotly.js is inlined so the file opens offline."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import figures, intervals, present
from .summary import StudySummary


@dataclass(frozen=True)
class StudySettings:
    """What the methods paragraph reports about how a study was run."""

    name: str
    slug: str
    raters_per_comparison: int
    allow_ties: bool
    mode: str  # "fixed" | "adaptive"
    gold_rate: float
    mirror_rate: float
    require_qualification: bool
    target_ci_width: float


def methods_paragraph(settings: StudySettings, summary: StudySummary, judged: pd.Series) -> str:
    """Plain text for a paper's methods section, from the study's settings and counts."""
    totals = summary.totals
    stamps = judged.dropna()
    dates = f"between {stamps.min():%Y-%m-%d} and {stamps.max():%Y-%m-%d}" if len(stamps) else ""
    choice = (
        "could answer that both were equally good (or bad)"
        if settings.allow_ties
        else "had to choose one video (no ties)"
    )
    design = (
        f"Each comparison was shown to {settings.raters_per_comparison} different raters."
        if settings.mode == "fixed"
        else "Comparisons were assigned adaptively: after a calibration set rated by "
        f"{settings.raters_per_comparison} raters each, the pair with the widest interval was "
        f"served first, until every pair's interval was narrower than "
        f"{settings.target_ci_width:.2f} on both questions."
    )
    qc = []
    if settings.gold_rate:
        share = f"{100 * settings.gold_rate:.0f}% of tasks"
        qc.append(f"gold comparisons with a degraded side ({share})")
    if settings.mirror_rate:
        share = f"{100 * settings.mirror_rate:.0f}% of tasks"
        qc.append(f"repeated, mirrored comparisons ({share})")
    if settings.require_qualification:
        qc.append("a qualification quiz before rating")
    checks = (
        "Quality control used " + ", ".join(qc) + "; these checks are excluded from all results."
        if qc
        else "No gold or mirrored checks were mixed in."
    )
    return " ".join(
        [
            f"{totals['raters']:.0f} rater{'' if totals['raters'] == 1 else 's'} made "
            f"{totals['judgments']:.0f} judgments on {totals['comparisons']:.0f} comparisons "
            f"of {totals['prompts']:.0f} prompts {dates}.",
            "Each task showed two videos of the same prompt side by side, in random left/right "
            "order, and asked which video the rater preferred (Quality) and which aligned better "
            "with the prompt (Faithfulness); every answer needed at least one reason. Raters "
            f"{choice}.",
            design,
            checks,
            intervals.HEADLINE_DEFINITION,
            "P-values are two-sided sign tests of A's majority wins against B's. Bradley–Terry "
            f"strengths (Davidson's model with ties) have percentile intervals from "
            f"{summary.rounds} bootstrap rounds over prompts. Judgments of raters flagged by "
            "quality control are included in the headline and shown separately without them.",
        ]
    )


def html_report(
    *,
    settings: StudySettings,
    summary: StudySummary,
    unflagged: StudySummary,
    judged: pd.Series,
    plotly_js: Path,
) -> str:
    """The report as one HTML document (plotly.js inlined: the file opens offline)."""
    table = present.dashboard_table(summary, unflagged)
    rows = present.table_rows(table)
    charts = figures.dashboard_figures(summary)
    chart_html = "\n".join(
        f'<div class="chart">{figure.to_html(full_html=False, include_plotlyjs=False)}</div>'
        for name, figure in charts.items()
        if name != "progress"
    )
    e = html.escape
    body_rows = "\n".join(
        "<tr>"
        f"<td>{e(row['variant_a'])}</td><td>{e(row['variant_b'])}</td>"
        + "".join(
            f"<td>{row[q]['rate']}</td><td>{row[q]['ci']}</td><td>{row[q]['p']}</td>"
            f"<td>{row[q]['unflagged']}</td>"
            for q in ("quality", "faithfulness")
        )
        + f"<td>{row['comparisons']:.0f}</td><td>{row['judgments']:.0f}</td></tr>"
        for row in rows
    )
    agreement = "\n".join(
        f"<tr><td>{e(row['question'])}</td><td>{row['kappa_text']} ({e(row['kappa_note'])})</td>"
        f"<td>{row['alpha_text']}</td><td>{_gold(row)}</td></tr>"
        for row in present.agreement_rows(summary.agreement)
    )
    ratings = pd.concat(summary.ratings.values(), ignore_index=True)
    rating_rows = "\n".join(
        f"<tr><td>{e(row.question)}</td><td>{row.rank}</td><td>{e(row.variant)}</td>"
        f"<td>{present.number(row.strength)}</td>"
        f"<td>[{present.number(row.strength_lo)}, {present.number(row.strength_hi)}]</td></tr>"
        for row in ratings.itertuples()
    )
    return _PAGE.format(
        title=e(settings.name),
        plotly=plotly_js.read_text(encoding="utf-8"),
        methods=e(methods_paragraph(settings, summary, judged)),
        rows=body_rows,
        agreement=agreement,
        ratings=rating_rows,
        charts=chart_html,
    )


def _gold(row: dict[str, object]) -> str:
    if not row["gold_n"]:
        return "–"
    return f"{100 * float(row['gold_accuracy']):.1f}% of {row['gold_n']} gold judgments"  # type: ignore[arg-type]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: human evaluation</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3em .6em; text-align: left; }}
td:nth-child(n+3) {{ font-variant-numeric: tabular-nums; }}
.chart {{ margin: 1.5em 0; }}
</style>
<script>{plotly}</script></head>
<body>
<h1>{title}: human evaluation</h1>
<h2>Methods</h2>
<p id="methods">{methods}</p>
<h2>Ablation table</h2>
<table id="ablation-table">
<thead><tr><th>A (design)</th><th>B</th>
<th>Q win %</th><th>Q 95% CI</th><th>Q p</th><th>Q without flagged</th>
<th>F win %</th><th>F 95% CI</th><th>F p</th><th>F without flagged</th>
<th>comparisons</th><th>judgments</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Agreement</h2>
<table id="agreement"><thead><tr><th>question</th><th>Fleiss' κ</th><th>Krippendorff's α</th>
<th>gold accuracy</th></tr></thead><tbody>
{agreement}
</tbody></table>
<h2>Ratings across variants</h2>
<table id="ratings"><thead><tr><th>question</th><th>rank</th><th>variant</th><th>strength</th>
<th>95% CI</th></tr></thead><tbody>
{ratings}
</tbody></table>
<h2>Charts</h2>
{charts}
</body></html>
"""
