"""Sessions signed in before the authentication backend moved to raters.auth stay signed in."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client, override_settings

from raters import auth
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ENGINES = ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"]


def _client_with_session(user, backend: str) -> tuple[Client, str]:  # type: ignore[no-untyped-def]
    """A browser holding a session written the way Django's login() wrote it with `backend`."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = backend
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return client, store.session_key or ""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_naming_the_old_backend_path_is_still_signed_in(engine):
    with override_settings(SESSION_ENGINE=engine):
        user = UserFactory(username="signed-in-before-the-move")
        client, key = _client_with_session(user, "evalsite.auth.ProfileBackend")
        me = client.get("/api/raters/me/")
        assert me.status_code == 200 and me.json()["username"] == user.username
        # The old name is read as the new one, not written back: the GET wrote nothing.
        stored = import_module(engine).SessionStore(session_key=key).load()
        assert stored["_auth_user_backend"] == "evalsite.auth.ProfileBackend"
        page = client.get("/rate/")
        assert page.status_code != 302 or "login" not in page["Location"]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_new_backend_path_signs_in_and_unknown_paths_do_not(engine):
    with override_settings(SESSION_ENGINE=engine):
        user = UserFactory()
        assert auth.BACKEND in settings.AUTHENTICATION_BACKENDS
        client, _ = _client_with_session(user, auth.BACKEND)
        assert client.get("/api/raters/me/").json()["username"] == user.username
        stranger, _ = _client_with_session(user, "elsewhere.auth.SomeBackend")
        assert stranger.get("/api/raters/me/").status_code in (401, 403)
