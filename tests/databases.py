"""The database URL a server or worker process started by a test should use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def database_url(settings_dict: Mapping[str, Any] | None = None) -> str:
    """The URL of a Django connection's database (by default this process's own: the test
    database under pytest), for another process to open."""
    if settings_dict is None:
        from django.db import connection

        settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    return f"postgres://{user}@{host}:{settings_dict.get('PORT') or 5432}/{settings_dict['NAME']}"
