"""The staff home: one page linking generation, studies, analysis and the admin."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

View = Callable[..., HttpResponseBase]


def staff_required(view: View) -> View:
    """Anonymous users go to the login page; signed-in non-staff (raters) get 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def optional_url(name: str) -> str:
    """The URL of `name`, or "" where this install has no such page."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


@staff_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    from generation import selectors as generation_selectors
    from raters.models import Study

    context = {
        "batches": generation_selectors.recent_batches(limit=5),
        "studies": Study.objects.order_by("-created_at")[:10],
        "variants_url": optional_url("generation:variants")
        or reverse("admin:generation_modelvariant_changelist"),
    }
    return render(request, "staff/home.html", context)
