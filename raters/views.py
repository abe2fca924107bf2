"""Rater pages: thin views over raters.services and raters.selectors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models.fields.files import FieldFile
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from evalsite import accel, ratelimit

from . import auth, juice, quiz, selectors, services
from .models import Rater, Study

CHUNK_BYTES = 64 * 1024
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A number longer than any file offset is absurd: 416 (int() of 4,300+ digits would raise).
MAX_RANGE_DIGITS = 18


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    study = selectors.active_studies().first()
    if study is None:
        return render(request, "raters/no_study.html")
    return redirect("raters:rate", slug=study.slug)


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest, slug: str) -> HttpResponse:
    """Crowd start link: ?PROLIFIC_PID=… (parameter set per study). Its GET shows a Start
    button and writes nothing (a link preview or mail scanner opening it must not take the
    worker id); the POST creates the rater, or resumes one that has this id through `sig` (a
    signed link), the signed-in browser or its resume code."""
    study = get_object_or_404(Study, slug=slug)
    if not study.is_active:
        return render(request, "raters/paused.html", {"study": study})
    external_id = request.GET.get(study.external_id_param, "")
    if request.method == "GET":
        try:
            external_id = services.check_external_id(study=study, external_id=external_id)
        except ValidationError as exc:
            return HttpResponseBadRequest(" ".join(exc.messages), content_type="text/plain")
        signed_in = request.user.is_authenticated and (
            selectors.rater_profile_or_blank(user=request.user).external_id == external_id
        )
        if signed_in:  # this browser is that worker already: straight back to work
            return redirect("raters:rate", slug=study.slug)
        return render(request, "raters/start.html", {"study": study})
    code = request.POST.get("resume_code", "") if request.method == "POST" else ""
    # Resume codes are guessed like passwords: failures count as failed sign-ins.
    limit_key = f"crowd-resume:{external_id}"
    if code and (ratelimit.is_limited(request) or ratelimit.username_is_limited(limit_key)):
        return ratelimit.too_many(request)
    try:
        user = services.start_crowd_session(
            study=study,
            external_id=external_id,
            signature=request.GET.get("sig", ""),
            code=code,
            signed_in=request.user if request.user.is_authenticated else None,
        )
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages), content_type="text/plain")
    except services.ResumeRefused as refused:
        if code:
            ratelimit.count_failure(start, credentials={"username": limit_key}, request=request)
        context = {"study": study, "error": refused.message if code else ""}
        return render(request, "raters/resume.html", context, status=403 if code else 200)
    if user.pk != request.user.pk:
        login(request, user, backend=auth.BACKEND)
    return redirect("raters:rate", slug=study.slug)


@login_required
@require_GET
def rate(request: HttpRequest, slug: str) -> HttpResponse:
    """The rating page, without a task: its script claims one with a POST to the API's
    `next` (an open task again after a reload), so showing the page claims nothing."""
    study = get_object_or_404(Study, slug=slug)
    if not study.is_active:  # paused or closed: say so (a submit refused by it reloads here)
        return render(request, "raters/paused.html", {"study": study})
    refused = _refusal(request, study)
    if refused is not None:
        return refused
    if selectors.rater_finished(study=study, rater=request.user):
        return redirect("raters:done", slug=slug)
    context = {
        "study": study,
        "questions": _questions(),
        "tie_reasons": list(juice.TIE_REASONS.items()),
        "reasons_prompt": juice.REASONS_PROMPT,
        "resume_code": _resume_code(request),
    }
    response = render(request, "raters/rate.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def instructions(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug, is_active=True)
    profile = selectors.rater_profile_or_blank(user=request.user)
    context = {
        "study": study,
        "questions": _questions(),
        "tie_reasons": list(juice.TIE_REASONS.items()),
        "needs_quiz": study.require_qualification and not profile.is_qualified,
        "resume_code": _resume_code(request),
    }
    return render(request, "raters/instructions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def take_quiz(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug, is_active=True)
    result = None
    if request.method == "POST":
        try:
            result = services.take_quiz(user=request.user, answers=request.POST)
        except services.RatingRefused as refused:
            return _screened_out(request, study, refused.message)
        if result.passed:
            return redirect("raters:rate", slug=slug)
        if result.attempts_left == 0:
            return _screened_out(request, study, "You did not pass the qualification quiz.")
    # The paper of the next attempt: its own variants and option order.
    paper = selectors.quiz_paper(rater=selectors.rater_profile_or_blank(user=request.user))
    context = {"study": study, "questions": paper, "result": result}
    return render(request, "raters/quiz.html", context, status=200 if result is None else 400)


@login_required
@require_GET
def done(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    # A paused or closed study hands out nothing more: what was done is done.
    if study.is_active:
        refused = _refusal(request, study)
        if refused is not None:
            return refused
        if not selectors.rater_finished(study=study, rater=request.user):
            return redirect("raters:rate", slug=slug)
    code = selectors.crowd_code(study=study, rater=request.user)
    completion = code.code if code is not None and code.kind == "completion" else ""
    context = {
        "study": study,
        "progress": selectors.rater_progress(study=study, rater=request.user),
        "completion_code": completion,
        "return_url": study.return_url(completion) if completion else "",
        "resume_code": _resume_code(request),
    }
    return render(request, "raters/done.html", context)


@require_GET
def clip(request: HttpRequest, token: str, side: str, kind: str) -> HttpResponseBase:
    """A video or poster of the rater's own assignment: byte ranges, no name in any header."""
    user = _session_or_token_user(request)
    if user is None:
        return HttpResponse("Log in first.", status=403, content_type="text/plain")
    assignment = selectors.assignment_for_clip(token=token, rater=user)
    if assignment is None or side not in ("left", "right") or kind not in ("video", "poster"):
        raise Http404
    field = selectors.clip_file(assignment=assignment, side=side, kind=kind)
    if field is None:
        raise Http404
    content_type = "video/mp4" if kind == "video" else "image/png"
    if accel.accel_prefix():
        return accel.accel_response(field, content_type)
    return ranged_file_response(field, content_type, request.headers.get("Range", ""))


def ranged_file_response(
    field: FieldFile, content_type: str, range_header: str
) -> HttpResponseBase:
    """Stream a stored file, whole (200) or one byte range (206), without reading it all."""
    size = field.size
    start, end = 0, size - 1
    status = 200
    match = RANGE_RE.match(range_header.strip())
    if match and (match.group(1) or match.group(2)):
        if max(len(match.group(1)), len(match.group(2))) > MAX_RANGE_DIGITS:
            return _unsatisfiable(size)
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:
            start = max(0, size - int(match.group(2)))
        if start >= size or start > end:
            return _unsatisfiable(size)
        status = 206
    response = StreamingHttpResponse(
        _read_range(field, start, end - start + 1), status=status, content_type=content_type
    )
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _unsatisfiable(size: int) -> HttpResponse:
    refused = HttpResponse(status=416)
    refused["Content-Range"] = f"bytes */{size}"
    return refused


def _session_or_token_user(request: HttpRequest) -> Any:
    """The page uses its session; scripts send `Authorization: Token …` as for the API."""
    if request.user.is_authenticated:
        return request.user
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        # It reads only the Authorization header, which a plain HttpRequest carries too.
        found = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return None
    return found[0] if found else None


def _read_range(field: FieldFile, start: int, length: int) -> Iterator[bytes]:
    handle = field.storage.open(field.name or "", "rb")
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _questions() -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        ("quality", juice.QUALITY_QUESTION, list(juice.QUALITY_REASONS.items())),
        ("faithfulness", juice.FAITHFULNESS_QUESTION, list(juice.FAITHFULNESS_REASONS.items())),
    ]


def _resume_code(request: HttpRequest) -> str:
    """A crowd worker's resume code, shown on their pages; '' for site logins."""
    try:
        profile = request.user.rater  # type: ignore[union-attr]
    except (AttributeError, Rater.DoesNotExist):
        return ""
    return services.resume_code(rater=profile) if profile.external_id else ""


def _refusal(request: HttpRequest, study: Study) -> HttpResponse | None:
    """Where a rater who may not rate this study goes instead (read only): the instructions
    while quiz attempts are left, else the screen-out page; None for a rater who may rate."""
    try:
        services.check_may_rate(study=study, user=request.user)
    except services.RatingRefused as refused:
        attempts = selectors.rater_profile_or_blank(user=request.user).quiz_attempts
        if refused.code == "not_qualified" and attempts < quiz.MAX_ATTEMPTS:
            return redirect("raters:instructions", slug=study.slug)
        return _screened_out(request, study, refused.message)
    return None


def _screened_out(request: HttpRequest, study: Study, message: str) -> HttpResponse:
    code = selectors.crowd_code(study=study, rater=request.user)
    context: dict[str, Any] = {
        "study": study,
        "message": message,
        "screenout_code": code.code if code is not None and code.kind == "screenout" else "",
    }
    return render(request, "raters/screened_out.html", context, status=403)
