"""Authentication backend: Django's own, with the rater profile loaded alongside the user.

Every rating request reads the signed-in user and their rater profile (qualified? stopped?).
Both come from one written-out statement: through the ORM, compiling the join cost more than
running it, on every request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from evalsite.rawload import partial_instance

BACKEND = "evalsite.auth.ProfileBackend"
# What rating reads of a profile; other fields load on first use, as with QuerySet.only().
PROFILE_FIELDS = ("id", "user_id", "is_flagged", "qualified_at", "is_simulated")


class ProfileBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        from raters.models import Rater

        users = get_user_model()
        profile_columns = ", ".join(f"r.{name} AS rater_{name}" for name in PROFILE_FIELDS)
        sql = (
            f"SELECT u.*, {profile_columns} FROM {users._meta.db_table} u "  # noqa: S608
            f"LEFT JOIN {Rater._meta.db_table} r ON r.user_id = u.id WHERE u.id = %s"
        )
        try:
            user_id = users._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a tampered session id is just no user
            return None
        user = next(iter(users._default_manager.raw(sql, [user_id])), None)
        if user is None or not self.user_can_authenticate(user):
            return None
        values = [getattr(user, f"rater_{name}") for name in PROFILE_FIELDS]
        for name in PROFILE_FIELDS:
            delattr(user, f"rater_{name}")
        if values[0] is not None:
            profile = partial_instance(Rater, dict(zip(PROFILE_FIELDS, values, strict=True)))
            profile.user = user
            user.rater = profile
        return user
