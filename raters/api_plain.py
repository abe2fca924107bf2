"""The rating API's two POSTs (next, submit) as a browser's rating page sends them, answered
without DRF's request machinery, which cost about a tenth of a rating round trip's CPU.

`rating_post(drf_view, answer)` serves the URL of one of the rating API's DRF views. A POST
that a rating page sends (signed in with a session of this site's backend, CSRF token right,
no Authorization header, a JSON body or none, answered in JSON) goes to `answer`, a function
of (request, SessionUser, URL kwargs) that returns the response or None to hand the request
on. Everything else goes to the DRF view and gets the answer it always had: token clients,
other methods, another Accept header or body type, a failed CSRF check, and a submit whose
input this module's quick check does not take as it is (an error, a number sent as a string):
DRF's serializer then explains the error or takes it.

Both paths call the same functions for the work (`api.next_answer`, `api.submit_answer`), take
input the same way (`judgment_input` returns exactly what JudgmentInputSerializer validates
to, or None), and write the same bytes and headers: tests/raters/test_api_plain.py sends each
kind of request both ways and compares the answers. The API schema still describes the DRF
views (the wrapper keeps their `cls`).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler

from evalsite.parsers import LimitedJSONParser

from . import api, juice
from .auth import RatingSessionAuthentication, SessionUser, session_user
from .serializers import SIDES, JudgmentInputSerializer

Answer = Callable[..., HttpResponse | None]
# The Accept headers for which DRF picks its JSON renderer with no options (a browser's fetch
# sends */*; the simulated raters application/json). Any other goes to DRF's negotiation.
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})
_RENDERER = JSONRenderer()
_PARSER = LimitedJSONParser()  # the API's own JSON parser (evalsite.parsers)


def rating_post(drf_view: Any, answer: Answer) -> Any:
    """The view for `drf_view`'s URL: a rating page's POST answered by `answer`, all else by
    `drf_view` (see the module's docstring)."""
    drf = drf_view.cls(**drf_view.initkwargs)
    drf.setup(HttpRequest())  # as each request's view is set up (it adds HEAD where GET is)
    allow = ", ".join(drf.allowed_methods)

    @csrf_exempt  # checked below, as DRF's session sign-in checks it
    @wraps(drf_view)  # keeps `cls`, which the schema generator reads
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _rating_page_user(request)
        if user is not None:
            try:
                response = answer(request, user, *args, **kwargs)
            except (exceptions.APIException, Http404, PermissionDenied) as exc:
                response = _drf_error(exc, user)
            if response is not None:  # with the headers DRF's view adds to every answer
                response["Allow"] = allow
                patch_vary_headers(response, ["Accept"])  # its two renderers: JSON, browsable
                return response
        return drf_view(request, *args, **kwargs)  # type: ignore[no-any-return]

    return view


def _rating_page_user(request: HttpRequest) -> SessionUser | None:
    """The SessionUser of a POST that a rating page sends, None for any other request."""
    if (
        request.method != "POST"
        or "HTTP_AUTHORIZATION" in request.META
        or request.META.get("HTTP_ACCEPT", "").strip() not in JSON_ACCEPTS
        or "format" in request.GET  # DRF's format override
    ):
        return None
    user = session_user(request)
    if user is None or _csrf_failure(request):
        return None  # a failed check: DRF's view refuses it with its own message
    request.user = user  # type: ignore[assignment]  # as DRF sets it
    return user


def _csrf_failure(request: HttpRequest) -> bool:
    """Whether the CSRF check of DRF's session sign-in refuses the request."""
    try:
        # It only hands the request to Django's CSRF middleware: a Django request will do.
        RatingSessionAuthentication().enforce_csrf(request)  # type: ignore[arg-type]
    except exceptions.PermissionDenied:
        return True
    return False


def _drf_error(exc: Exception, user: SessionUser) -> HttpResponse:
    """What DRF's view answers when its handler raises `exc` (the rating views sign in by
    session first, so a refused sign-in is a 403, and its session is ended)."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        exc.status_code = 403
        user.end_again()
    drf = exception_handler(exc, {})
    if drf is None:  # pragma: no cover - the three kinds above are all DRF's to answer
        raise exc
    response = json_response(drf.status_code, drf.data)
    for name, value in drf.items():  # WWW-Authenticate, Retry-After if the error sets them
        if name.lower() != "content-type":  # the not-yet-rendered Response's default
            response[name] = value
    return response


def json_response(status: int, body: Any) -> HttpResponse:
    """`body` as DRF's JSON renderer writes it (no body, no Content-Type: as DRF's 204)."""
    content = _RENDERER.render(body)
    response = HttpResponse(content, status=status)
    if not content:
        del response["Content-Type"]
    else:
        response["Content-Type"] = "application/json"
    return response


# --- the two POSTs ---------------------------------------------------------------------------


def next_task(request: HttpRequest, user: SessionUser, slug: str) -> HttpResponse:
    """POST /api/studies/<slug>/next/ (its body is not read)."""
    return json_response(*api.next_answer(user, slug))


def submit(request: HttpRequest, user: SessionUser) -> HttpResponse | None:
    """POST /api/judgments/ with a JSON body that `judgment_input` takes; None for any other."""
    data = judgment_input(_json_body(request))
    if data is None:
        return None
    return json_response(*api.submit_answer(user, data))


def _json_body(request: HttpRequest) -> Any:
    """The request's JSON body as DRF's parser reads it, or None where that parser would not
    read it as it is (another content type or charset, bad JSON, too deep, NaN)."""
    if request.content_type != "application/json":
        return None
    if (request.content_params or {}).get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return None
    try:
        return _PARSER.parse(io.BytesIO(request.body))
    except ParseError:  # bad UTF-8 or JSON, too deep, NaN or Infinity
        return None


# The JudgmentInputSerializer fields' limits, read from the serializer itself.
_FIELDS = JudgmentInputSerializer._declared_fields
_INTS = {
    name: (_FIELDS[name].min_value, _FIELDS[name].max_value)  # type: ignore[attr-defined]
    for name in ("time_spent_ms", "watch_ms", "replays", "seeks")
}
_MAX_REASONS = {
    question: _FIELDS[f"{question}_reasons"].max_length  # type: ignore[attr-defined]
    for question in ("quality", "faithfulness")
}
_REASONS = frozenset(juice.QUALITY_REASONS) | frozenset(juice.FAITHFULNESS_REASONS)
_REASONS |= frozenset(juice.TIE_REASONS)


def judgment_input(data: Any) -> dict[str, Any] | None:
    """Exactly JudgmentInputSerializer's validated data for `data`, when `data` is the plain
    form a rating page sends: a JSON object of a UUID string, two of "left"/"right"/"tie",
    lists of known reason names, integers in range and a boolean (missing ones take their
    defaults; unknown keys are ignored, as DRF ignores them). None for anything else, which the
    serializer decides (it may still take it, e.g. a number sent as a string)."""
    if type(data) is not dict:
        return None
    token = data.get("token")
    if type(token) is not str:
        return None
    try:
        given: dict[str, Any] = {"token": uuid.UUID(hex=token)}
    except ValueError:
        return None
    for question in ("quality", "faithfulness"):
        choice = data.get(question)
        reasons = data.get(f"{question}_reasons", [])
        if type(choice) is not str or choice not in SIDES:
            return None
        if type(reasons) is not list or len(reasons) > _MAX_REASONS[question]:
            return None
        if not all(type(r) is str and r in _REASONS for r in reasons):
            return None
        given[question] = choice
        given[f"{question}_reasons"] = list(reasons)
    for name, (least, most) in _INTS.items():
        value = data.get(name, 0)
        if type(value) is not int or not least <= value <= most:
            return None
        given[name] = value
    played = data.get("played_through", False)
    if type(played) is not bool:
        return None
    given["played_through"] = played
    return given
