"""Staff pages for studies: build, preview, publish, watch, pause, close and pay.

Thin: parse a form, call raters.studies or raters.study_reports, render.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalsite.staff import staff_required
from generation.forms import MAX_PK
from generation.models import GenerationBatch, Video

from . import juice, studies, study_reports
from .forms import PayRuleForm, StudyBuilderForm
from .models import Study
from .views import ranged_file_response


@staff_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    rows = Study.objects.prefetch_related("batches").order_by("-created_at")
    return render(request, "raters/staff/index.html", {"studies": rows})


@staff_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """GET: the builder (?batch=ID preselects a batch and its variants). POST: preview, back
    to editing, or publish."""
    if request.method == "GET":
        return render(request, "raters/staff/builder.html", {"form": _builder_form(request)})
    form = StudyBuilderForm(request.POST)
    action = request.POST.get("action", "preview")
    if action != "edit" and form.is_valid():
        try:
            design = form.design()
            if action == "publish":
                study = studies.publish_study(design=design)
                messages.success(request, "Published: the links below are ready to share.")
                return redirect("studies:detail", slug=study.slug)
            plan = studies.plan_study(design=design, pay_per_hour=form.pay_rate())
        except (ValidationError, django_forms.ValidationError) as exc:
            form.add_error(None, exc)
        else:
            context = {"form": form, "plan": plan, **_sample_context(plan)}
            return render(request, "raters/staff/preview.html", context)
    return render(request, "raters/staff/builder.html", {"form": form}, status=200)


def _builder_form(request: HttpRequest) -> StudyBuilderForm:
    initial: dict[str, Any] = {}
    batch_id = request.GET.get("batch", "")
    if batch_id.isdigit() and int(batch_id) <= MAX_PK:
        batch = GenerationBatch.objects.filter(pk=int(batch_id)).first()
        if batch is not None:
            variants = list(batch.variants.order_by("slug", "version"))
            slug = slugify(batch.name)[:80] or f"batch-{batch.pk}"
            while Study.objects.filter(slug=slug).exists():
                slug = f"{slug[:80]}-{Study.objects.count() + 1}"
            initial.update(
                sources=[batch.pk],
                variants=[v.pk for v in variants],
                baseline=variants[-1].pk if variants else None,
                name=f"Study of {batch.name}",
                slug=slug,
            )
    return StudyBuilderForm(initial=initial)


def _sample_context(plan: studies.StudyPlan) -> dict[str, Any]:
    """The sample pair laid out as the rating page lays it out (A on the left here)."""
    sample = plan.sample
    if sample is None:
        return {}

    def side(video: Video) -> dict[str, str]:
        return {
            "video": reverse("studies:clip", args=[video.pk, "video"]),
            "poster": reverse("studies:clip", args=[video.pk, "poster"]) if video.poster else "",
        }

    return {
        "sample": sample,
        "sample_left": side(sample.video_a),
        "sample_right": side(sample.video_b),
        "sample_fps": min(sample.video_a.fps, sample.video_b.fps),
        "questions": [
            ("quality", juice.QUALITY_QUESTION, list(juice.QUALITY_REASONS.items())),
            (
                "faithfulness",
                juice.FAITHFULNESS_QUESTION,
                list(juice.FAITHFULNESS_REASONS.items()),
            ),
        ],
        "reasons_prompt": juice.REASONS_PROMPT,
    }


@staff_required
@require_GET
def clip(request: HttpRequest, video_id: int, kind: str) -> HttpResponseBase:
    """A generated video or poster for staff previews (raters only ever get raters:clip)."""
    if video_id > MAX_PK or kind not in ("video", "poster"):
        raise Http404
    video = get_object_or_404(Video, pk=video_id)
    field = video.file if kind == "video" else video.poster
    if not field:
        raise Http404
    content_type = "video/mp4" if kind == "video" else "image/png"
    return ranged_file_response(field, content_type, request.headers.get("Range", ""))


@staff_required
@require_GET
def detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    pay_form = PayRuleForm(request.GET or None)
    rule = pay_form.rule()
    context = {
        "study": study,
        "progress": study_reports.study_progress(study=study),
        "raters": study_reports.rater_rows(study=study, rule=rule),
        "pay_form": pay_form,
        "pay_query": request.GET.urlencode(),
        "sources": study.batches.order_by("created_at"),
        "rater_url": request.build_absolute_uri(reverse("raters:rate", args=[study.slug])),
        "start_url": request.build_absolute_uri(reverse("raters:start", args=[study.slug]))
        + f"?{study.external_id_param}=",
    }
    return render(request, "raters/staff/detail.html", context)


@staff_required
@require_GET
def progress(request: HttpRequest, slug: str) -> JsonResponse:
    study = get_object_or_404(Study, slug=slug)
    body = {"state": study.state, **study_reports.study_progress(study=study).as_json()}
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response


ACTIONS = {
    "pause": (studies.pause_study, "Paused: no new tasks; tasks in flight may still be sent."),
    "resume": (studies.resume_study, "Resumed: raters get tasks again."),
    "close": (studies.close_study, "Closed: no new tasks; tasks in flight get the grace window."),
}


@staff_required
@require_POST
def action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    if action not in ACTIONS:
        raise PermissionDenied
    run, message = ACTIONS[action]
    try:
        run(study=study)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, message)
    return redirect("studies:detail", slug=study.slug)


@staff_required
@require_GET
def pay_file(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    form = PayRuleForm(request.GET or None)
    if request.GET and not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain")
    rows = study_reports.rater_rows(study=study, rule=form.rule())
    response = HttpResponse(study_reports.pay_file(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-bonus.csv"'
    return response


@staff_required
@require_GET
def completion_file(request: HttpRequest, slug: str) -> HttpResponse:
    """The workers to approve: those who earned the (shared) completion code by working."""
    study = get_object_or_404(Study, slug=slug)
    response = HttpResponse(study_reports.completion_file(study=study), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-completed.csv"'
    return response


EXPORT_FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@staff_required
@require_GET
def export(request: HttpRequest, slug: str, fmt: str) -> HttpResponseBase:
    """One row per judgment, as `export_results` writes it (rater ids hashed)."""
    from analysis import export as analysis_export
    from analysis import queries

    study = get_object_or_404(Study, slug=slug)
    if fmt not in EXPORT_FORMATS:
        raise Http404
    query = queries.export_query(study=study, include_simulated=False, include_rater_ids=False)
    handle = tempfile.NamedTemporaryFile(suffix=f".{fmt}", delete=False)  # noqa: SIM115
    handle.close()
    path = Path(handle.name)
    analysis_export.write_judgments(
        query.rows, columns=query.columns, path=path, fmt=fmt, progress=False
    )
    stream = path.open("rb")
    path.unlink()  # the open handle keeps the data until the response is sent
    return FileResponse(
        stream,
        as_attachment=True,
        filename=f"{study.slug}-judgments.{fmt}",
        content_type=EXPORT_FORMATS[fmt],
    )
