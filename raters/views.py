"""Rater pages: thin views over raters.services and raters.selectors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import juice, selectors, services
from .models import Study


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    study = selectors.active_studies().first()
    if study is None:
        return render(request, "raters/no_study.html")
    return redirect("raters:rate", slug=study.slug)


@login_required
@require_http_methods(["GET", "POST"])
def rate(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug, is_active=True)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        assignment = selectors.assignment_for_rater(
            token=request.POST.get("token", ""), rater=request.user
        )
        if assignment is None or assignment.comparison.study_id != study.id:
            raise Http404
        try:
            services.submit_judgment(
                assignment=assignment,
                quality=_answer(request, "quality"),
                faithfulness=_answer(request, "faithfulness"),
                time_spent_ms=_int(request.POST.get("time_spent_ms")),
            )
            return redirect("raters:rate", slug=slug)
        except ValidationError as exc:
            errors = exc.message_dict
            status = 400
    assignment = services.next_assignment(study=study, rater=request.user)
    context = {
        "study": study,
        "assignment": assignment,
        "progress": selectors.rater_progress(study=study, rater=request.user),
        "errors": errors,
        "questions": [
            ("quality", juice.QUALITY_QUESTION, juice.QUALITY_REASONS),
            ("faithfulness", juice.FAITHFULNESS_QUESTION, juice.FAITHFULNESS_REASONS),
        ],
        "tie_reasons": juice.TIE_REASONS,
        "reasons_prompt": juice.REASONS_PROMPT,
    }
    if assignment is None:
        return render(request, "raters/done.html", context)
    return render(request, "raters/rate.html", context, status=status)


@login_required
@require_GET
def clip(request: HttpRequest, token: str, side: str, kind: str) -> FileResponse:
    """A video or poster of the rater's own assignment, by side: no variant in URL or headers."""
    assignment = selectors.assignment_for_rater(token=token, rater=request.user)
    if assignment is None or side not in ("left", "right") or kind not in ("video", "poster"):
        raise Http404
    comparison = assignment.comparison
    video = comparison.video_a if (side == "left") == assignment.left_is_a else comparison.video_b
    field = video.file if kind == "video" else video.poster
    content_type = "video/mp4" if kind == "video" else "image/png"
    response = FileResponse(field.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _answer(request: HttpRequest, question: str) -> services.Answer:
    return services.Answer(
        side=request.POST.get(question, ""),
        reasons=tuple(request.POST.getlist(f"{question}_reasons")),
    )


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
