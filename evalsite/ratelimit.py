"""Login rate limiting: failed sign-ins per client address and per username, in the cache.

Failures are counted from Django's `user_login_failed` signal, which every login path sends
(the login page, the admin's login and the API token endpoint all call `authenticate`). Once a
key has too many failures in the window, POSTs to a login path answer 429 until it passes.
Use a shared cache (Redis, see docs/production.md) so every web worker sees the same counts.

The address is checked here, before the view. The username is checked by the authentication
backend (`refuse_if_limited`), on the username that whatever parsed the body handed to
`authenticate`: reading the body here again would miss encodings this module does not parse
(DRF also accepts `Content-Type: */*`), and parse hostile bodies before the view's limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse

DEFAULT_PATHS = ("/accounts/login/", "/admin/login/", "/api/auth/token/")
MESSAGE = "Too many failed sign-in attempts. Please wait a few minutes and try again."


def _limits() -> tuple[int, int, int]:
    """(failures per username, failures per address, window in seconds)."""
    per_user, per_address, window = getattr(settings, "LOGIN_RATE_LIMIT", (5, 20, 300))
    return int(per_user), int(per_address), int(window)


def _cache() -> Any:
    return caches[getattr(settings, "LOGIN_RATE_LIMIT_CACHE", "default")]


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}"


def _address(request: HttpRequest | Any) -> str:
    """The client address; behind nginx, from the header nginx sets (trusted, not appended)."""
    meta = getattr(request, "META", {}) or {}
    header = getattr(settings, "LOGIN_RATE_LIMIT_CLIENT_IP_HEADER", "")
    forwarded = str(meta.get(header, "")) if header else ""
    if forwarded:
        # The right-most entry is the one the trusted proxy added.
        return forwarded.split(",")[-1].strip()
    return str(meta.get("REMOTE_ADDR", ""))


@receiver(user_login_failed)
def count_failure(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    _per_user, _per_address, window = _limits()
    cache = _cache()
    keys = [_key("address", _address(request))] if request is not None else []
    username = credentials.get("username")
    if isinstance(username, str) and username:
        keys.append(_key("user", username))
    for key in keys:
        cache.add(key, 0, window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, window)


def is_limited(request: HttpRequest) -> bool:
    """Too many failures from this client address."""
    _per_user, per_address, _window = _limits()
    return bool(_cache().get(_key("address", _address(request)), 0) >= per_address)


def username_is_limited(username: str) -> bool:
    per_user, _per_address, _window = _limits()
    return bool(username) and _cache().get(_key("user", username), 0) >= per_user


def refuse_if_limited(request: Any, username: Any) -> None:
    """Called by the authentication backend before checking a password: a username with too
    many failures is refused (PermissionDenied stops `authenticate`), and the middleware turns
    the view's answer into a 429."""
    if isinstance(username, str) and username_is_limited(username):
        # DRF hands `authenticate` its own Request, which wraps the HttpRequest.
        target = getattr(request, "_request", request)
        if target is not None:
            target.login_rate_limited = True
        raise PermissionDenied(MESSAGE)


class LoginRateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        paths = getattr(settings, "LOGIN_RATE_LIMIT_PATHS", DEFAULT_PATHS)
        if request.method == "POST" and request.path in paths and is_limited(request):
            return too_many(request)
        response = self.get_response(request)
        if getattr(request, "login_rate_limited", False):
            return too_many(request)
        return response


def too_many(request: HttpRequest) -> HttpResponse:
    _per_user, _per_address, window = _limits()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": MESSAGE}, status=429)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Too many attempts</title><p>{MESSAGE}</p>",
            status=429,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(window)
    return response
