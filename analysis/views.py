"""Staff dashboard per study: the ablation table and its charts, refreshed while ratings come in.

pandas, scipy and plotly are imported when a dashboard is first asked for, not when the URLs
load: a web worker that only serves raters never pays their ~200 MB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from evalsite.staff import staff_required
from raters.models import Study


@staff_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request, "analysis/index.html", {"studies": Study.objects.order_by("-created_at")}
    )


@staff_required
@require_GET
def dashboard(request: HttpRequest, study_slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=study_slug)
    context = _context(study, include_simulated=request.GET.get("simulated") == "1")
    context["figures"] = {name: json.loads(text) for name, text in context["figures"].items()}
    return render(request, "analysis/dashboard.html", context)


@staff_required
@require_GET
def dashboard_data(request: HttpRequest, study_slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=study_slug)
    context = _context(study, include_simulated=request.GET.get("simulated") == "1")
    figures_json = ",".join(f'"{name}":{text}' for name, text in context["figures"].items())
    meta = {
        "version": context["version"],
        "updated": context["updated"],
        "table_html": render_to_string("analysis/_summary.html", context, request=request),
    }
    body = json.dumps(meta)[:-1] + f',"figures":{{{figures_json}}}}}'
    return HttpResponse(body, content_type="application/json")


@staff_required
@require_GET
def table_csv(request: HttpRequest, study_slug: str) -> HttpResponse:
    from . import present, queries

    study = get_object_or_404(Study, slug=study_slug)
    data = queries.study_summary(study=study, include_simulated=request.GET.get("simulated") == "1")
    table = present.dashboard_table(data.summary, data.unflagged)
    response = HttpResponse(table.to_csv(index=False), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-ablation-table.csv"'
    return response


@staff_required
@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.js from the plotly package itself: the dashboard needs no CDN."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = FileResponse(path.open("rb"), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _context(study: Study, *, include_simulated: bool) -> dict[str, Any]:
    import plotly.io as pio

    from . import figures, intervals, present, queries

    data = queries.study_summary(study=study, include_simulated=include_simulated)
    summary = data.summary
    ratings = {q: table.to_dict("records") for q, table in summary.ratings.items()}
    return {
        "study": study,
        "include_simulated": include_simulated,
        "headline_definition": intervals.HEADLINE_DEFINITION,
        "rows": present.table_rows(present.dashboard_table(summary, data.unflagged)),
        "totals": summary.totals,
        "agreement": present.agreement_rows(summary.agreement),
        "position_bias": summary.position_bias.to_dict("records"),
        "ratings": ratings,
        "metric_correlation": summary.metric_correlation.to_dict("records"),
        "metric_pairs": summary.metric_pairs.to_dict("records"),
        "rounds": summary.rounds,
        "figures": {
            name: pio.to_json(figure, validate=False)
            for name, figure in figures.dashboard_figures(summary).items()
        },
        "version": f"{summary.totals['judgments']}:{summary.totals['qc_judgments']}:"
        f"{data.unflagged.totals['judgments']}",
        "updated": timezone.now().strftime("%H:%M:%S UTC"),
        "refresh_seconds": getattr(settings, "ANALYSIS_REFRESH_SECONDS", 15),
    }
