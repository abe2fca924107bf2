"""Outages are recognised by what was raised, never by the words of the message."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.test import RequestFactory
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from evalsite.resilience import DatabaseUnavailableMiddleware


def _view(request):  # type: ignore[no-untyped-def]
    raise AssertionError("not called")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        RedisConnectionError("Error 111 connecting to redis:6379."),
        RedisTimeoutError("Timeout reading from socket"),
    ],
)
def test_a_lost_database_or_cache_is_an_outage(error):
    response = DatabaseUnavailableMiddleware(_view).process_exception(
        RequestFactory().get("/"), error
    )
    assert response is not None and response.status_code == 503


@pytest.mark.parametrize(
    "error",
    [
        DatabaseError('relation "connection_log" does not exist'),
        IntegrityError('duplicate key value violates unique constraint "connection_pkey"'),
        ValueError("connection string is malformed"),
    ],
)
def test_an_error_that_only_mentions_a_connection_is_not_an_outage(error):
    response = DatabaseUnavailableMiddleware(_view).process_exception(
        RequestFactory().get("/"), error
    )
    assert response is None
