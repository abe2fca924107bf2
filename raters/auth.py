"""Sign-in: Django's backend, with the rater profile loaded alongside the user.

Every rating request reads the signed-in user and their rater profile (qualified? stopped?).
Both come from one written-out statement (`raters.hot_path.user_with_profile`): through the
ORM, compiling the join cost more than running it, on every request.

Sessions name the backend that signed them in (`_auth_user_backend`), and Django ignores a
session whose backend is not in AUTHENTICATION_BACKENDS. This backend lived at
`evalsite.auth.ProfileBackend` until 30 Nov 2026, so sessions from before then name that
path. `AuthenticationMiddleware` (in MIDDLEWARE in place of Django's) reads such a session as
naming this backend: people stay signed in, crowd workers need no resume code. It rewrites
the name in memory only, so a GET still writes nothing, and it works the same for every
session engine (the database one, `cached_db` with its cached copies, cookies, files): a
migration rewriting `django_session` would miss the cached copies and would sign out the
old code's sessions during a rolling deploy. The session keeps the old name until it is next
saved for another reason; sessions are not extended on use (SESSION_SAVE_EVERY_REQUEST is
off), so LEGACY_BACKENDS can go once SESSION_COOKIE_AGE (two weeks) has passed since the move.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from evalsite import ratelimit

BACKEND = "raters.auth.ProfileBackend"
# Where this backend was before; a session naming one of these is read as naming BACKEND.
LEGACY_BACKENDS = frozenset({"evalsite.auth.ProfileBackend"})


class ProfileBackend(ModelBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        # A username with too many failed sign-ins is refused before its password is checked,
        # whichever login path and body encoding brought it (evalsite.ratelimit).
        ratelimit.refuse_if_limited(request, username or kwargs.get("username"))
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        from raters import hot_path

        try:
            user_id = get_user_model()._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a tampered session id is just no user
            return None
        user = hot_path.user_with_profile(user_id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user


def read_legacy_backend(session: SessionBase) -> None:
    """A session signed in through a LEGACY_BACKENDS path names BACKEND from now on, for this
    request; nothing is written for it (the session saves as it would have without this)."""
    if session.get(BACKEND_SESSION_KEY) in LEGACY_BACKENDS:
        modified = session.modified
        session[BACKEND_SESSION_KEY] = BACKEND
        session.modified = modified


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, reading sessions of LEGACY_BACKENDS as BACKEND's; as lazy as Django's (the
    session loads when the user is first asked for)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user(request))  # type: ignore[assignment]
        request.auser = partial(_auser, request)


def _user(request: HttpRequest) -> Any:
    read_legacy_backend(request.session)
    return auth_middleware.get_user(request)


async def _auser(request: HttpRequest) -> Any:
    await sync_to_async(read_legacy_backend)(request.session)
    return await auth_middleware.auser(request)
