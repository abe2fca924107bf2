"""A friendly retry answer while the database or the shared cache is unreachable (restart,
failover, network). Sessions are read through the Redis cache when DJANGO_CACHE_URL is set, so a
Redis restart must look the same to a rater as a database restart.

Without this, a PostgreSQL restart shows raters Django's 500 page: they would think their
work was lost. A 503 with Retry-After tells the rating page (and simulated raters) to resend
the same request, which is safe because a submit carries its assignment token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
MESSAGE = "The service is briefly unavailable. Your answers are safe: please try again shortly."
PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    f"<meta http-equiv='refresh' content='{RETRY_AFTER_S}'>"
    "<title>Back in a moment</title></head><body>"
    f"<h1>Back in a moment</h1><p>{MESSAGE}</p><p>This page reloads by itself.</p>"
    "</body></html>"
)


class DatabaseUnavailableMiddleware:
    """Turn a lost database connection inside a view into a 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_connection_failure(exception):
            return None
        # Django closes the broken connection at the end of this request (close_old_connections),
        # so the retried request opens a fresh one.
        logger.warning("database unavailable on %s %s: %s", request.method, request.path, exception)
        return unavailable_response(request)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    wants_json = request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")
    if wants_json:
        response: HttpResponse = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def _is_connection_failure(exception: Exception) -> bool:
    """By class alone: Django raises psycopg's lost-server errors as OperationalError (server
    gone, restart, failover) or InterfaceError (a connection that died in the pool); Redis its
    own ConnectionError and TimeoutError. Whatever the message says, nothing else is an outage."""
    return isinstance(
        exception, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError
    )
