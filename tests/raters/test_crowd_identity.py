"""A worker id (PID) is a name, not a credential: knowing one does not resume that worker."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client

from raters import services
from raters.models import Rater
from tests.raters.helpers import build_study, judge

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():  # type: ignore[no-untyped-def]
    cache.clear()
    yield
    cache.clear()


def _start(client: Client, study, pid: str, **extra: str):  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, v in {"PROLIFIC_PID": pid, **extra}.items())
    return client.post(f"/rate/start/{study.slug}/?{query}")


def _worker_with_a_judgment(study, pid: str = "victim-1"):  # type: ignore[no-untyped-def]
    worker = Client()
    assert _start(worker, study, pid).status_code == 302
    user = Rater.objects.get(external_id=pid).user
    services.qualify_rater(user=user)
    judge(services.next_assignment(study=study, rater=user))
    return worker, user


def _shown_code(client: Client, study) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/rate/{study.slug}/instructions/").content.decode()
    match = re.search(r'id="resume-code">([A-Z2-7-]+)<', page)
    assert match, "the first start shows a resume code"
    return match.group(1)


def test_someone_who_knows_a_pid_cannot_resume_that_worker_or_see_their_judgments():
    study = build_study(prompts=3)
    _worker, _user = _worker_with_a_judgment(study)
    # When another browser opens the start link with the victim's PID
    attacker = Client()
    page = _start(attacker, study, "victim-1")
    # Then it is asked for the resume code and is not signed in
    assert page.status_code == 200 and b'name="resume_code"' in page.content
    assert "_auth_user_id" not in attacker.session
    mine = attacker.get("/api/judgments/", HTTP_ACCEPT="application/json")
    assert mine.status_code in (401, 403)


def test_the_resume_code_shown_at_the_first_start_resumes_from_another_browser():
    study = build_study(prompts=3)
    worker, user = _worker_with_a_judgment(study)
    code = _shown_code(worker, study)
    other_device = Client()
    _start(other_device, study, "victim-1")
    # Typed loosely: lower case, no dash
    resumed = other_device.post(
        f"/rate/start/{study.slug}/?PROLIFIC_PID=victim-1",
        {"resume_code": code.lower().replace("-", "")},
    )
    assert resumed.status_code == 302
    assert other_device.session["_auth_user_id"] == str(user.pk)
    judgments = other_device.get("/api/judgments/", HTTP_ACCEPT="application/json").json()
    assert judgments["count"] == 1


def test_the_signed_in_browser_resumes_without_a_code():
    study = build_study(prompts=3)
    worker, user = _worker_with_a_judgment(study)
    again = _start(worker, study, "victim-1")
    assert again.status_code == 302 and worker.session["_auth_user_id"] == str(user.pk)


def test_a_signed_start_link_resumes_only_in_its_own_study():
    study = build_study(prompts=3)
    other = build_study(prompts=1, slug="other")
    _worker_with_a_judgment(study)
    signature = services.start_link_signature(study=study, external_id="victim-1")
    assert _start(Client(), study, "victim-1", sig=signature).status_code == 302
    assert _start(Client(), other, "victim-1", sig=signature).status_code == 200
    assert _start(Client(), study, "victim-1", sig="0" * 32).status_code == 200


def test_guessing_resume_codes_is_locked_out_like_passwords():
    study = build_study(prompts=3)
    worker, _user = _worker_with_a_judgment(study)
    code = _shown_code(worker, study)
    guesser = Client(REMOTE_ADDR="10.8.8.8")
    url = f"/rate/start/{study.slug}/?PROLIFIC_PID=victim-1"
    for _ in range(django_settings.LOGIN_RATE_LIMIT[0]):
        wrong = guesser.post(url, {"resume_code": "AAAAA-AAAAA"})
        assert wrong.status_code == 403 and b"not right" in wrong.content
    # Even the right code is refused for a while, from any address
    late = Client(REMOTE_ADDR="10.8.8.9").post(url, {"resume_code": code})
    assert late.status_code == 429


def test_a_new_pid_starts_without_any_code():
    study = build_study(prompts=1)
    client = Client()
    assert _start(client, study, "fresh-1").status_code == 302
    assert _shown_code(client, study)


def test_start_links_command_prints_links_that_resume_their_worker():
    from io import StringIO

    from django.core.management import call_command

    study = build_study(prompts=3)
    _worker_with_a_judgment(study)
    out = StringIO()
    call_command(
        "start_links",
        "--study",
        study.slug,
        "--base-url",
        "https://x.test/",
        "victim-1",
        stdout=out,
    )
    (link,) = out.getvalue().split()
    assert link.startswith(f"https://x.test/rate/start/{study.slug}/?PROLIFIC_PID=victim-1&sig=")
    path = link.removeprefix("https://x.test")
    browser = Client()
    assert browser.get(path).status_code == 200  # the start page: Start posts back to the link
    assert browser.post(path).status_code == 302
