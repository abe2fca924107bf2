"""Sessions signed in before the authentication backend moved to raters.auth stay signed in."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
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


# --- the rating API's POSTs: the user is read by the hot path's first statement -------------


def _rating_clients(user, study):  # type: ignore[no-untyped-def]
    """Two browsers signed in as `user` (sessions, as the rating page is), one holding a task:
    each rating POST is then tried first on a session of its own."""
    clients = []
    for _ in range(2):
        client = Client()
        client.force_login(user)
        clients.append(client)
    task = clients[0].post(f"/api/studies/{study.slug}/next/", content_type="application/json")
    assert task.status_code == 200
    return clients, task.json()["token"]


def _submit(client, token):  # type: ignore[no-untyped-def]
    body = {
        "token": token,
        "quality": "left",
        "quality_reasons": ["motion_smoothness"],
        "faithfulness": "left",
        "faithfulness_reasons": ["spatial_alignment"],
        "watch_ms": 0,
        "played_through": True,
    }
    return client.post("/api/judgments/", body, content_type="application/json")


def _refused(clients, study, token):  # type: ignore[no-untyped-def]
    """Both rating POSTs are refused as signed out, each tried first on a session of its own
    (a refusal may end the session), and neither wrote a row."""
    from raters.models import Assignment, Judgment

    def next_task(client):  # type: ignore[no-untyped-def]
        answer = client.post(f"/api/studies/{study.slug}/next/", content_type="application/json")
        assert answer.status_code == 403 and "token" not in answer.json()

    def submit(client):  # type: ignore[no-untyped-def]
        answer = _submit(client, token)
        assert answer.status_code == 403 and "id" not in answer.json()

    counts = Assignment.objects.count(), Judgment.objects.count()
    submit(clients[0])
    next_task(clients[1])
    next_task(clients[0])
    submit(clients[1])
    assert (Assignment.objects.count(), Judgment.objects.count()) == counts


@pytest.mark.parametrize("engine", ENGINES)
def test_rating_posts_refuse_a_user_deactivated_since_signing_in(engine):
    from tests.raters.helpers import build_study, qualified_rater

    with override_settings(SESSION_ENGINE=engine):
        study = build_study(prompts=3, min_watch_ms=0, slug="deactivated")
        user = qualified_rater()
        clients, token = _rating_clients(user, study)
        type(user).objects.filter(pk=user.pk).update(is_active=False)
        _refused(clients, study, token)


def test_a_stale_session_learns_nothing_from_a_rating_post_that_fails_early():
    """An unknown study or a malformed judgment is answered only once the user is checked."""
    from tests.raters.helpers import build_study, qualified_rater

    study = build_study(prompts=3, min_watch_ms=0, slug="early")
    user = qualified_rater()
    (client, _other), _token = _rating_clients(user, study)
    assert client.post("/api/studies/no-such-study/next/").status_code == 404
    assert client.post("/api/judgments/", {"token": "x"}).status_code == 400
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert client.post("/api/studies/no-such-study/next/").status_code == 403
    assert client.post("/api/judgments/", {"token": "x"}).status_code == 403


@pytest.mark.parametrize("engine", ENGINES)
def test_a_password_change_ends_other_sessions_on_the_rating_path(engine):
    from tests.raters.helpers import build_study, qualified_rater

    with override_settings(SESSION_ENGINE=engine):
        study = build_study(prompts=3, min_watch_ms=0, slug="password")
        user = qualified_rater()
        clients, token = _rating_clients(user, study)
        keys = [c.cookies[settings.SESSION_COOKIE_NAME].value for c in clients]
        user.set_password("changed-elsewhere")
        user.save()
        _refused(clients, study, token)
        # Django's check ended the sessions, rows included (the refusal rolled back the rating
        # statement's transaction, not the session's end): a GET finds no one signed in now.
        assert not Session.objects.filter(session_key__in=keys).exists()
        assert [c.get("/api/raters/me/").status_code for c in clients] == [403, 403]


@pytest.mark.parametrize("engine", ENGINES)
def test_rating_posts_refuse_a_session_whose_user_is_gone_or_forged(engine):
    from tests.raters.helpers import build_study, qualified_rater

    with override_settings(SESSION_ENGINE=engine):
        study = build_study(prompts=3, min_watch_ms=0, slug="forged")
        user = qualified_rater()
        clients, token = _rating_clients(user, study)
        for client in clients:
            key = client.cookies[settings.SESSION_COOKIE_NAME].value
            store = import_module(engine).SessionStore(session_key=key)
            store["_auth_user_hash"] = "not-the-hash"
            store.save()
        _refused(clients, study, token)
        gone = build_study(prompts=3, slug="gone")
        clients, token = _rating_clients(user, gone)
        type(user).objects.filter(pk=user.pk).delete()
        _refused(clients, gone, token)


def test_a_rating_post_loads_no_user_before_its_first_statement():
    """The user arrives with what next and submit read first: no statement of their own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.raters.helpers import build_study, qualified_rater

    study = build_study(prompts=3, min_watch_ms=0, slug="no-user-load")
    (client, _other), token = _rating_clients(qualified_rater(), study)
    with CaptureQueriesContext(connection) as queries:
        assert _submit(client, token).status_code == 201
        assert client.post(f"/api/studies/{study.slug}/next/").status_code == 200
    users = [
        q["sql"] for q in queries if 'FROM "auth_user"' in q["sql"] or "FROM auth_user" in q["sql"]
    ]
    assert users == [], users


@pytest.mark.services
def test_rating_posts_refuse_stale_sessions_on_postgresql():
    """The same refusals where the profile lock is PostgreSQL's FOR UPDATE OF."""
    from django.db import connection

    assert connection.vendor == "postgresql"
    engine = "django.contrib.sessions.backends.cached_db"
    test_rating_posts_refuse_a_user_deactivated_since_signing_in(engine)
    test_a_password_change_ends_other_sessions_on_the_rating_path(engine)
    test_rating_posts_refuse_a_session_whose_user_is_gone_or_forged(engine)
    test_a_rating_post_loads_no_user_before_its_first_statement()
