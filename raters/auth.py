"""Sign-in: Django's backend, with the rater profile loaded alongside the user.

Every rating request reads the signed-in user and their rater profile (qualified? stopped?).
Both come from one written-out statement (`raters.hot_path.user_with_profile`): through the
ORM, compiling the join cost more than running it, on every request. The rating API's two
POSTs (next, submit) save even that statement: RatingSessionAuthentication gives them a
SessionUser, known by the session's user id only, and the first statement each runs anyway
(the profile lock, the task's read) reads the user with it; `confirm` then makes Django's
checks (active, password unchanged since sign-in) before anything is done for them, and
leaves anything unusual to Django's own check.

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
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.base import SessionBase
from django.db import connection
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject, empty
from drf_spectacular.authentication import SessionScheme
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

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


# --- the rating hot path: the user checked inside its own first statement -----------------------


class SessionUser(SimpleLazyObject):  # type: ignore[type-arg]
    """A session's user, known by id only until `confirm` is given the user as the rating
    path's first statement read them, or until anything else is asked of it: then it loads
    and is checked as Django checks any request's user. Until then it answers only `pk`,
    `id` and "signed in", which is what a rating request needs before its first statement
    (RatingSessionAuthentication, on the rating API's POSTs only)."""

    _wrapped: Any

    def __init__(self, request: HttpRequest, user_id: Any) -> None:
        super().__init__(lambda: _user(request))
        self.__dict__["_session"] = request.session
        self.__dict__["_user_id"] = user_id

    # Until loaded: the session's user id, signed in. Once loaded: the user's own answers
    # (AnonymousUser's, if Django's check refused the session).
    @property
    def pk(self) -> Any:
        return self.__dict__["_user_id"] if self._wrapped is empty else self._wrapped.pk

    id = pk

    @property
    def is_authenticated(self) -> bool:
        return True if self._wrapped is empty else bool(self._wrapped.is_authenticated)

    @property
    def is_anonymous(self) -> bool:
        return not self.is_authenticated

    def __bool__(self) -> bool:
        return True

    def confirm(self, user: Any) -> Any:
        """`user` as the hot path's statement read them (None: it found none) if they may be
        signed in with this session: active, and the session's password hash still theirs.
        Otherwise Django's own check decides (it ends a session whose password changed, and
        takes sessions signed with a fallback key); NotAuthenticated if it refuses."""
        if self._wrapped is not empty:  # already loaded and checked, Django's way
            checked = self._wrapped
        elif user is not None and _may_sign_in(self.__dict__["_session"], user):
            self._wrapped = user
            checked = user
        else:
            session = self.__dict__["_session"]
            key = session.session_key
            self._setup()
            checked = self._wrapped
            if key and session.session_key != key and connection.in_atomic_block:
                # Django's check ended the session inside the rating statement's transaction,
                # which the refusal rolls back: EndsRefusedSessions ends it again afterwards.
                self.__dict__["_ended_key"] = key
        if not checked.is_authenticated:
            raise NotAuthenticated()
        return checked

    def end_again(self) -> None:
        """Delete the session that Django's check ended inside a transaction since rolled back
        (its stored copy would otherwise stay until it expires; it is refused either way)."""
        key = self.__dict__.pop("_ended_key", None)
        if key:
            self.__dict__["_session"].delete(key)


def _may_sign_in(session: SessionBase, user: Any) -> bool:
    """What django.contrib.auth.get_user checks of a session's user (read by the session's
    user id), with the current secret key: the backend lets them in, the password unchanged."""
    given = session.get(HASH_SESSION_KEY)
    return bool(
        ProfileBackend().user_can_authenticate(user)
        and given
        and constant_time_compare(given, user.get_session_auth_hash())
    )


def confirm(user: Any, loaded: Any) -> Any:
    """The request's `user`, checked against `loaded` (the user as a hot-path statement read
    them, or None) if it is a SessionUser; any other user was checked when it was loaded."""
    return user.confirm(loaded) if isinstance(user, SessionUser) else user


class RatingSessionAuthentication(SessionAuthentication):
    """DRF's session sign-in for the rating API's POSTs (next, submit), without the statement
    that loads the user: the request's user is a SessionUser, and the hot path's first
    statement reads the user with what it reads anyway, then `confirm`s them before acting
    on it. CSRF is enforced as for any session. Other methods sign in as usual."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = session_user(request._request) if request.method == "POST" else None
        if user is None:
            return super().authenticate(request)
        self.enforce_csrf(request)
        return user, None


def session_user(request: HttpRequest) -> SessionUser | None:
    """The request's SessionUser if its session was signed in through BACKEND; None for any
    other session (no one signed in, another backend, a tampered id: Django's check decides)."""
    session = request.session
    read_legacy_backend(session)
    if SESSION_KEY not in session or session.get(BACKEND_SESSION_KEY) != BACKEND:
        return None
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
    except Exception:  # noqa: BLE001 - a tampered session id is just no user
        return None
    return SessionUser(request, user_id)


class EndsRefusedSessions:
    """For the views that authenticate with RatingSessionAuthentication: a session refused
    inside the rating statement's transaction is ended once that transaction is over."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotAuthenticated):
            user = getattr(getattr(self, "request", None), "_user", None)
            if isinstance(user, SessionUser):
                user.end_again()
        return super().handle_exception(exc)  # type: ignore[misc]


class RatingSessionScheme(SessionScheme):  # type: ignore[no-untyped-call]
    """The API schema describes RatingSessionAuthentication as the session cookie it is (a
    name of its own: the schema's components need one per authentication class)."""

    target_class = "raters.auth.RatingSessionAuthentication"
    name = "ratingCookieAuth"
