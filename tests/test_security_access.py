"""Access-control matrix: anonymous, rater A, rater B and staff × every URL the resolver knows.

Routes are enumerated from the URL resolver, so a new page or API route is covered the day it
is added. What must hold everywhere:
- anonymous visitors get a login redirect, 401/403/404/405 or a public page (login, start link);
- raters never get a 2xx from the admin or staff pages, and no 2xx body or header they get
  names a variant, another rater, or another rater's assignment tokens;
- rater B reaches none of rater A's assignments, clips or judgments;
- staff get no 5xx anywhere;
- no GET writes a row, whoever asks (claims go through POST).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from generation.models import Video
from raters import services
from raters.models import Assignment, Judgment
from tests.factories import (
    ModelVariantFactory,
    StaffFactory,
    StudyFactory,
    UserFactory,
    VariantPairFactory,
    make_comparison,
)

pytestmark = pytest.mark.django_db

SECRET_VARIANT_NAMES = ("Quokka-ZeroSNR-Design", "Wombat-Standard-Baseline")
SECRET_VARIANT_SLUGS = ("quokka-zsnr-design", "wombat-std-baseline")
# The admin login page is a login page; the API schema needs a signed-in user.
PUBLIC_ROUTE_NAMES = {"login", "logout", "admin:login", "raters:start", "api:token"}
STAFF_PREFIXES = ("admin/", "staff/")
# Where the resolver offers a choice (admin's app_label regex), these are tried.
REGEX_SAMPLES = {"app_label": ["raters", "generation", "auth"]}


@dataclass(frozen=True)
class Route:
    template: str  # e.g. "rate/clip/<uuid:token>/<str:side>/<str:kind>"
    name: str  # namespaced, "" when unnamed
    params: tuple[str, ...]
    regex: bool


def iter_routes(patterns=None, prefix: str = "", namespace: str = "") -> list[Route]:  # type: ignore[no-untyped-def]
    routes: list[Route] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        pattern = entry.pattern
        text = str(pattern)
        if isinstance(pattern, RegexPattern):
            text = text.lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            routes += iter_routes(
                entry.url_patterns, prefix + text, f"{namespace}{ns}:" if ns else namespace
            )
        elif isinstance(entry, URLPattern):
            template = prefix + text
            found = re.findall(r"\(\?P<(\w+)>|<(?:\w+:)?(\w+)>", template)
            routes.append(
                Route(
                    template=template,
                    name=f"{namespace}{entry.name}" if entry.name else "",
                    params=tuple(dict.fromkeys(a or b for a, b in found)),
                    regex="(?P<" in template or not isinstance(pattern, RoutePattern),
                )
            )
    return routes


@dataclass
class World:
    study_slug: str
    a_token: str
    b_token: str
    a_judgment_id: int
    a_judged_token: str
    rater_a: object
    rater_b: object
    staff: object
    samples: dict[str, list[str]]


@pytest.fixture
def world() -> World:
    variant_a = ModelVariantFactory(name=SECRET_VARIANT_NAMES[0], slug=SECRET_VARIANT_SLUGS[0])
    variant_b = ModelVariantFactory(name=SECRET_VARIANT_NAMES[1], slug=SECRET_VARIANT_SLUGS[1])
    study = StudyFactory(slug="access-study", min_watch_ms=0, gold_rate=0.0, mirror_rate=0.0)
    pair = VariantPairFactory(study=study, variant_a=variant_a, variant_b=variant_b)
    comparisons = [make_comparison(pair=pair) for _ in range(3)]
    rater_a = UserFactory(username="rater-alpha")
    rater_b = UserFactory(username="rater-bravo")
    for user in (rater_a, rater_b):
        services.qualify_rater(user=user)
    staff = StaffFactory(username="staff-root")
    judged = Assignment.objects.create(
        comparison=comparisons[0], rater=rater_a, left_is_a=True, status=Assignment.Status.DONE
    )
    judgment = Judgment.objects.create(
        assignment=judged,
        quality="a",
        quality_reasons=["pixel_sharpness"],
        faithfulness="a",
        faithfulness_reasons=["spatial_alignment"],
    )
    a_open = Assignment.objects.create(comparison=comparisons[1], rater=rater_a, left_is_a=False)
    b_open = Assignment.objects.create(comparison=comparisons[2], rater=rater_b, left_is_a=True)
    ids = [str(judgment.id), str(judged.id), str(comparisons[0].id)]
    return World(
        study_slug=study.slug,
        a_token=str(a_open.token),
        b_token=str(b_open.token),
        a_judgment_id=judgment.id,
        a_judged_token=str(judged.token),
        rater_a=rater_a,
        rater_b=rater_b,
        staff=staff,
        samples={
            "slug": [study.slug],
            "study_slug": [study.slug],
            "study": [study.slug],
            "token": [str(a_open.token), str(judged.token)],
            "side": ["left", "right"],
            "kind": ["video", "poster"],
            "pk": ids,
            "id": ids,
            "object_id": ids,
            "app_label": REGEX_SAMPLES["app_label"],
        },
    )


def concrete_urls(route: Route, world: World) -> list[str]:
    """Every URL to try for a route: A's objects wherever the route takes an id or token."""
    urls = [route.template]
    for param in route.params:
        values = world.samples.get(param, ["1"])
        expanded = []
        for url in urls:
            for value in values:
                pattern = rf"<(?:\w+:)?{param}>|\(\?P<{param}>[^)]*\)"
                expanded.append(re.sub(pattern, value, url, count=1))
        urls = expanded
    cleaned = []
    for url in urls:
        url = re.sub(r"\\(.)", r"\1", url)
        if re.search(r"[()\[\]?*+|^$]", url):
            continue  # a regex the samples cannot fill: counted below
        cleaned.append("/" + url)
    return cleaned


def body_of(response) -> str:  # type: ignore[no-untyped-def]
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n" + content.decode("utf-8", "replace")


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def is_login_redirect(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code in (301, 302, 303) and "login" in response.get("Location", "")


@pytest.fixture
def routes(world: World) -> list[tuple[Route, str]]:
    pairs = [(route, url) for route in iter_routes() for url in concrete_urls(route, world)]
    covered = {route.template for route, _ in pairs}
    uncovered = [r.template for r in iter_routes() if r.template not in covered]
    # Only the admin's catch-all and regex internals may be left out; every app route is tried.
    assert all(t.startswith("admin/") for t in uncovered), uncovered
    assert len(pairs) > 20
    return pairs


def test_anonymous_reaches_nothing_but_public_pages(routes, world):
    client = client_for(None)
    leaks = []
    for route, url in routes:
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code < 500, (method, url, response.status_code)
            if response.status_code < 300 and route.name not in PUBLIC_ROUTE_NAMES:
                leaks.append((method, url, response.status_code))
    assert not leaks, f"anonymous visitors got 2xx from: {leaks}"


def test_raters_never_see_variants_other_raters_or_staff_pages(routes, world):
    # Storage names are opaque, but only the clip URL (token + side) may reach a rater.
    file_names = [
        name for pair in Video.objects.values_list("file", "poster") for name in pair if name
    ]
    assert file_names
    for me, other, other_tokens in (
        (world.rater_a, world.rater_b, [world.b_token]),
        (world.rater_b, world.rater_a, [world.a_token, world.a_judged_token]),
    ):
        client = client_for(me)
        forbidden_words = [
            *SECRET_VARIANT_NAMES,
            *SECRET_VARIANT_SLUGS,
            other.username,
            *other_tokens,
            *file_names,
        ]
        for route, url in routes:
            response = client.get(url)
            assert response.status_code < 500, (me.username, url, response.status_code)
            if route.template.startswith(STAFF_PREFIXES) and route.name not in PUBLIC_ROUTE_NAMES:
                assert response.status_code >= 300, f"{me.username} reached staff page {url}"
                continue
            if response.status_code >= 300:
                continue
            text = body_of(response)
            for word in forbidden_words:
                assert word not in text, f"{me.username} saw {word!r} at {url}"


def test_rater_b_cannot_reach_rater_a_clips_judgments_or_tokens(world, routes):
    client = client_for(world.rater_b)
    a_tokens = (world.a_token, world.a_judged_token)
    tried = 0
    for _route, url in routes:
        if not any(t in url for t in a_tokens) and f"/{world.a_judgment_id}/" not in url:
            continue
        tried += 1
        response = client.get(url)
        assert response.status_code in (302, 400, 403, 404, 405), (url, response.status_code)
    assert tried >= 1, "no route takes an assignment token or judgment id"
    # Submitting on A's open assignment as B is refused and writes nothing.
    response = client.post(
        "/api/judgments/",
        {
            "token": world.a_token,
            "quality": "left",
            "quality_reasons": ["pixel_sharpness"],
            "faithfulness": "left",
            "faithfulness_reasons": ["spatial_alignment"],
            "played_through": True,
            "watch_ms": 10000,
        },
        content_type="application/json",
    )
    assert response.status_code in (400, 403, 404), response.status_code
    assert not Judgment.objects.filter(assignment__token=world.a_token).exists()


def test_rater_a_gets_own_clip_with_nothing_naming_the_variant(world):
    client = client_for(world.rater_a)
    response = client.get(f"/rate/clip/{world.a_token}/left/video", HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    text = body_of(response)
    for secret in (*SECRET_VARIANT_NAMES, *SECRET_VARIANT_SLUGS, "variant"):
        assert secret.lower() not in text.lower()


def test_staff_get_no_server_error_anywhere(routes, world):
    client = client_for(world.staff)
    failures = []
    for _route, url in routes:
        response = client.get(url)
        if response.status_code >= 500:
            failures.append((url, response.status_code))
    assert not failures
    assert client.get("/admin/").status_code == 200


def test_raters_are_not_admitted_to_the_admin(world):
    response = client_for(world.rater_a).get("/admin/raters/judgment/")
    assert is_login_redirect(response)


def test_api_writes_with_a_session_need_the_csrf_token(world):
    # Given rater A signed in through the page (session cookie), not with an API token
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.rater_a)
    body = {
        "token": world.a_token,
        "quality": "left",
        "quality_reasons": ["pixel_sharpness"],
        "faithfulness": "left",
        "faithfulness_reasons": ["spatial_alignment"],
        "played_through": True,
        "watch_ms": 10000,
    }
    # When a cross-site page posts a judgment without the CSRF header, it is refused
    response = client.post("/api/judgments/", body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.content.decode()
    assert not Judgment.objects.filter(assignment__token=world.a_token).exists()
    response = client.post(f"/api/studies/{world.study_slug}/next/")
    assert response.status_code == 403


def test_media_files_have_no_url_in_production():
    # Clips reach raters only through the clip view; with DEBUG off nothing serves MEDIA_ROOT.
    import os
    import secrets
    import subprocess
    import sys

    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="eval.example.org",
        DJANGO_SETTINGS_MODULE="evalsite.settings",
    )
    code = (
        "import django; django.setup(); from django.urls import resolve, Resolver404\n"
        "try:\n    resolve('/media/videos/0123.mp4'); print('served')\n"
        "except Resolver404:\n    print('no route')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "no route", result.stdout + result.stderr


WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|MERGE)\b", re.IGNORECASE)


def test_no_get_writes_a_row(routes, world):
    # Everyone who can GET: anonymous, raters (one with an open task, one signed in for the
    # first time with no profile yet), staff. Page views and polling must not claim tasks,
    # create profiles or touch anything else: claims and profiles come from POSTs.
    newcomer = UserFactory(username="rater-newcomer")
    writes: list[tuple[str, str, str]] = []
    for user in (None, world.rater_a, newcomer, world.staff):
        client = client_for(user)
        who = getattr(user, "username", "anonymous")
        for _route, url in routes:

            def record(execute, sql, params, many, context, url=url, who=who):  # type: ignore[no-untyped-def]
                if WRITES.match(sql):
                    writes.append((who, url, sql[:80]))
                return execute(sql, params, many, context)

            with connection.execute_wrapper(record):
                response = client.get(url)
            assert response.status_code < 500, (who, url, response.status_code)
    assert not writes, writes
