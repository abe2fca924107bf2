"""Authentication backend: Django's own, with the rater profile loaded alongside the user.

Every rating request reads the signed-in user and their rater profile (qualified? stopped?).
Both come from one written-out statement: through the ORM, compiling the join cost more than
running it, on every request.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from evalsite import ratelimit

BACKEND = "evalsite.auth.ProfileBackend"
# What rating reads of a profile; other fields load on first use, as with QuerySet.only().
PROFILE_FIELDS = ("id", "user_id", "is_flagged", "qualified_at", "is_simulated")


class ProfileBackend(ModelBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        # A username with too many failed sign-ins is refused before its password is checked,
        # whichever login path and body encoding brought it (evalsite.ratelimit).
        ratelimit.refuse_if_limited(request, username or kwargs.get("username"))
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        from raters.hot_path import instance
        from raters.models import Rater

        users = get_user_model()
        try:
            user_id = users._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a tampered session id is just no user
            return None
        sql, width = _user_with_profile_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        user = instance(users, row[:width])
        if not self.user_can_authenticate(user):
            return None
        if row[width] is not None:
            profile = instance(Rater, row[width:], PROFILE_FIELDS)
            profile.user = user
            user.rater = profile
        return user


@functools.cache
def _user_with_profile_sql() -> tuple[str, int]:
    """The statement (built once: it runs on every request) and how many user columns lead."""
    from raters.hot_path import columns
    from raters.models import Rater

    users = get_user_model()
    sql = (
        f"SELECT {columns(users, 'u')}, "  # noqa: S608
        f"{columns(Rater, 'r', PROFILE_FIELDS)} FROM {users._meta.db_table} u "
        f"LEFT JOIN {Rater._meta.db_table} r ON r.user_id = u.id WHERE u.id = %s"
    )
    return sql, len(users._meta.concrete_fields)
