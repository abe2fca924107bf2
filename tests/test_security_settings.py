"""Production settings: deploy checks, secure cookies, HSTS, CSRF, login rate limit, 503 page."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client, RequestFactory

from evalsite.resilience import DatabaseUnavailableMiddleware
from tests.factories import UserFactory

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "eval.example.org",
    "DJANGO_SETTINGS_MODULE": "evalsite.settings",
}


def _production(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env={**env, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _production(
        "import sys; from django.core.management import execute_from_command_line as run; "
        "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_production_settings_use_secure_cookies_hsts_and_no_debug():
    result = _production(
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ['DEBUG', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', "
        "'SESSION_COOKIE_HTTPONLY', 'X_FRAME_OPTIONS', 'SECURE_CONTENT_TYPE_NOSNIFF']}))"
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["SECURE_CONTENT_TYPE_NOSNIFF"]


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=django_settings.BASE_DIR,
        env={**env, "DJANGO_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "evalsite.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_csrf_middleware_is_on():
    assert "django.middleware.csrf.CsrfViewMiddleware" in django_settings.MIDDLEWARE


@pytest.mark.django_db
def test_login_form_without_csrf_token_is_refused():
    UserFactory(username="alice")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.fixture
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_login_is_rate_limited_after_repeated_failures(_fresh_cache):
    # Given a rater account and an attacker guessing its password
    UserFactory(username="bob")
    client = Client()
    per_user = django_settings.LOGIN_RATE_LIMIT[0]
    for _ in range(per_user):
        response = client.post("/accounts/login/", {"username": "bob", "password": "guess"})
        assert response.status_code == 200  # the form again, with an error
    # When the right password comes after the limit
    response = client.post("/accounts/login/", {"username": "bob", "password": "pw-for-tests"})
    # Then it is refused with a readable 429 and no session
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    # And another account from another address is not affected
    UserFactory(username="carol")
    other = Client(REMOTE_ADDR="10.0.0.9")
    response = other.post("/accounts/login/", {"username": "carol", "password": "pw-for-tests"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_one_address_guessing_many_usernames_is_rate_limited(_fresh_cache):
    client = Client(REMOTE_ADDR="10.1.2.3")
    per_address = django_settings.LOGIN_RATE_LIMIT[1]
    for i in range(per_address):
        client.post("/accounts/login/", {"username": f"nobody{i}", "password": "x"})
    response = client.post("/accounts/login/", {"username": "nobody-else", "password": "x"})
    assert response.status_code == 429


@pytest.mark.django_db
def test_admin_login_is_rate_limited_too(_fresh_cache):
    UserFactory(username="dave", is_staff=True)
    client = Client(REMOTE_ADDR="10.4.4.4")
    for _ in range(django_settings.LOGIN_RATE_LIMIT[0]):
        client.post("/admin/login/", {"username": "dave", "password": "guess"})
    response = client.post("/admin/login/", {"username": "dave", "password": "pw-for-tests"})
    assert response.status_code == 429


def _broken_view(request):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    ("path", "accept", "content_type"),
    [
        ("/api/judgments/", "application/json", "application/json"),
        ("/rate/some-study/", "text/html", "text/html; charset=utf-8"),
    ],
)
def test_lost_database_gives_a_friendly_503_not_a_stack_trace(path, accept, content_type):
    request = RequestFactory().post(path, HTTP_ACCEPT=accept)
    middleware = DatabaseUnavailableMiddleware(_broken_view)
    try:
        _broken_view(request)
    except OperationalError as exc:
        response = middleware.process_exception(request, exc)
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == content_type
    body = response.content.decode()
    assert "try again" in body and "Traceback" not in body and "OperationalError" not in body


def test_lost_cache_server_gives_the_same_friendly_503():
    # Sessions come through the shared Redis cache in production: a Redis restart mid-rating.
    from redis.exceptions import ConnectionError as RedisConnectionError

    request = RequestFactory().post("/api/judgments/")
    lost = RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")
    response = DatabaseUnavailableMiddleware(_broken_view).process_exception(request, lost)
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "5" and "try again" in response.content.decode()


def test_other_errors_are_not_disguised_as_503():
    request = RequestFactory().get("/")
    assert (
        DatabaseUnavailableMiddleware(_broken_view).process_exception(request, ValueError("bug"))
        is None
    )


def test_the_web_process_does_not_import_the_ml_stack():
    # The WSGI app with every URL module loaded: torch and diffusers stay in the worker.
    result = _production(
        "import sys, django; django.setup(); import evalsite.wsgi; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.django_db
def test_behind_a_proxy_the_limit_keys_on_the_forwarded_address(_fresh_cache, settings):
    # Given every request arriving from nginx on 127.0.0.1 with the client in X-Forwarded-For
    settings.LOGIN_RATE_LIMIT_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    for i in range(settings.LOGIN_RATE_LIMIT[1]):
        attacker.post("/accounts/login/", {"username": f"guess{i}", "password": "x"})
    assert attacker.post("/accounts/login/", {"username": "z", "password": "x"}).status_code == 429
    # Then another client behind the same proxy can still sign in
    UserFactory(username="erin")
    other = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2")
    response = other.post("/accounts/login/", {"username": "erin", "password": "pw-for-tests"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_api_token_endpoint_is_rate_limited_with_a_json_message(_fresh_cache):
    UserFactory(username="frank")
    client = Client(REMOTE_ADDR="10.5.5.5")
    for _ in range(django_settings.LOGIN_RATE_LIMIT[0]):
        response = client.post(
            "/api/auth/token/",
            {"username": "frank", "password": "guess"},
            content_type="application/json",
        )
        assert response.status_code == 400
    response = client.post(
        "/api/auth/token/",
        {"username": "frank", "password": "pw-for-tests"},
        content_type="application/json",
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.json()["detail"]


@pytest.mark.django_db
def test_rating_api_answers_503_when_the_session_cache_is_down(settings):
    """The production set-up reads sessions through Redis (cached_db): with Redis gone a rater
    gets the retry answer, not a 500 page."""
    rater = UserFactory()
    client = Client()
    client.force_login(rater)  # session stored in the database first
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = client.get("/api/raters/me/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "5" and "try again" in response.json()["detail"]


def _encoded(encoding: str, username: str, password: str) -> dict:
    """POST arguments for the test client: the same credentials in one body encoding."""
    from urllib.parse import urlencode

    from django.test.client import MULTIPART_CONTENT

    fields = {"username": username, "password": password}
    if encoding == "form":
        return {"data": fields}  # the test client's default: multipart
    if encoding == "urlencoded":
        return {"data": urlencode(fields), "content_type": "application/x-www-form-urlencoded"}
    if encoding == "json":
        return {"data": fields, "content_type": "application/json"}
    if encoding == "any":
        # DRF parses a `*/*` body with its first parser (JSON); the limiter used to read nothing.
        return {"data": json.dumps(fields), "content_type": "*/*"}
    assert encoding == "multipart"
    return {"data": fields, "content_type": MULTIPART_CONTENT}


ENCODINGS = ["form", "urlencoded", "json", "any", "multipart"]


@pytest.mark.django_db
@pytest.mark.parametrize("guess_with", ENCODINGS)
@pytest.mark.parametrize("then_with", ["json", "any"])
def test_token_lockout_counts_attempts_however_the_body_is_encoded(
    _fresh_cache, guess_with, then_with
):
    # Given an attacker guessing a password at the token endpoint in one body encoding
    UserFactory(username="grace")
    client = Client(REMOTE_ADDR="10.6.6.6")
    for _ in range(django_settings.LOGIN_RATE_LIMIT[0]):
        response = client.post("/api/auth/token/", **_encoded(guess_with, "grace", "guess"))
        # (the password was really checked: the body was understood)
        assert "Unable to log in" in response.content.decode(), (guess_with, response.content)
    # When the right password comes in another encoding, from another address
    other = Client(REMOTE_ADDR="10.6.6.7")
    response = other.post("/api/auth/token/", **_encoded(then_with, "grace", "pw-for-tests"))
    # Then the username is locked whatever the encoding
    assert response.status_code == 429, (guess_with, then_with, response.status_code)
    assert "token" not in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["form", "urlencoded", "multipart"])
def test_login_page_lockout_counts_every_form_encoding(_fresh_cache, encoding):
    UserFactory(username="heidi")
    client = Client(REMOTE_ADDR="10.7.7.7")
    for _ in range(django_settings.LOGIN_RATE_LIMIT[0]):
        assert (
            client.post("/accounts/login/", **_encoded(encoding, "heidi", "x")).status_code == 200
        )
    other = Client(REMOTE_ADDR="10.7.7.8")
    response = other.post("/accounts/login/", **_encoded(encoding, "heidi", "pw-for-tests"))
    assert response.status_code == 429 and "_auth_user_id" not in other.session
