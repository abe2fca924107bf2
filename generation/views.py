"""Staff pages: launch a batch, watch it, and act on it. Parse → call a service → render."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from evalsite.staff import staff_required

from . import imports, selectors, services
from .forms import MAX_PK, ImportForm, LaunchForm, VariantForm
from .models import GenerationBatch


def _batch_or_404(pk: int) -> GenerationBatch:
    if pk > MAX_PK:  # the URL takes any digits; the database column does not
        raise Http404
    return get_object_or_404(GenerationBatch, pk=pk)


@staff_required
def launch(request: HttpRequest) -> HttpResponse:
    initial = {"variants": request.GET.getlist("variants")}
    form = LaunchForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = {
            "name": data["name"],
            "variants": data["variants"],
            "seeds": data["seeds"],
            "created_by": request.user,
            "chunk_size": data["chunk_size"],
            "sample_batch": data["sample_batch"],
        }
        try:
            if data["prompt_file"] is not None:
                batch = services.create_batch_from_upload(**options, **data["prompt_file"])
            else:
                batch = services.create_batch(**options, prompt_set=data["prompt_set"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("generation:batch", pk=batch.pk)
    context = {"form": form, "batches": selectors.recent_batches()}
    return render(request, "generation/launch.html", context)


@staff_required
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_or_404(pk)
    report = selectors.batch_report(batch=batch)
    return render(request, "generation/batch.html", {"batch": batch, "report": report})


@staff_required
@require_GET
def batch_progress(request: HttpRequest, pk: int) -> JsonResponse:
    batch = _batch_or_404(pk)
    response = JsonResponse(selectors.batch_report(batch=batch))
    response["Cache-Control"] = "no-store"
    return response


ACTIONS: dict[str, tuple[Callable[[GenerationBatch], int], str]] = {
    "cancel": (lambda b: services.cancel_batch(batch=b), "Cancelled {n} unfinished jobs."),
    "retry_failed": (lambda b: services.retry_failed(batch=b), "Re-queued {n} failed jobs."),
    "resume": (lambda b: services.resume_batch(batch=b), "Sent {n} queued jobs to the workers."),
    "requeue_stuck": (
        lambda b: services.requeue_stuck(alive_workers=services.alive_workers(), batch=b),
        "Re-queued {n} stuck jobs.",
    ),
}


@staff_required
@require_POST
def batch_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    batch = _batch_or_404(pk)
    if action not in ACTIONS:
        raise PermissionDenied
    run, message = ACTIONS[action]
    messages.success(request, message.format(n=run(batch)))
    return redirect("generation:batch", pk=batch.pk)


@staff_required
def variants(request: HttpRequest) -> HttpResponse:
    """Register a variant of any kind; a config a worker could not use is a form error."""
    form = VariantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            done = services.register_variant(
                name=data["name"],
                config=data["config"],
                slug=data["slug"],
                description=data["description"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            verb = "Registered" if done.created else "Already registered, unchanged:"
            messages.success(request, f"{verb} {done.variant}. " + " ".join(done.notes))
            return redirect("generation:variants")
    context = {"form": form, "variants": selectors.variant_rows()}
    return render(request, "generation/variants.html", context)


@staff_required
def import_upload(request: HttpRequest) -> HttpResponse:
    """Upload videos made elsewhere for an imported variant; every file gets its outcome."""
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = imports.import_upload(
                variant=data["variant"],
                prompt_set=data["prompt_set"],
                files=data["upload"],
                create_prompts=data["create_prompts"],
                skip_bad=data["skip_bad"],
                created_by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    context = {
        "form": form,
        "report": report,
        "limit_mb": settings.JUICE_IMPORT_UPLOAD_MAX_MB,
    }
    return render(request, "generation/import.html", context)
