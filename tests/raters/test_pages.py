"""Crowd start links, quiz, instructions, finish and screen-out pages."""

from __future__ import annotations

import pytest
from django.test import Client

from raters import services
from raters.models import Assignment, Rater
from tests.factories import UserFactory
from tests.raters.helpers import build_study, judge, qualified_rater, right_quiz_answers

pytestmark = pytest.mark.django_db


def test_start_link_creates_then_resumes_a_passwordless_rater():
    study = build_study(prompts=2, require_qualification=True)
    client = Client()
    first = client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=abc123")
    assert first.status_code == 302 and first["Location"] == f"/rate/{study.slug}/"
    assert client.get(first["Location"])["Location"] == f"/rate/{study.slug}/instructions/"
    profile = Rater.objects.get(external_id="abc123")
    assert not profile.user.has_usable_password()

    # The same browser resumes; another one is asked for the resume code (test_crowd_identity)
    again = client.get(f"/rate/start/{study.slug}/?PROLIFIC_PID=abc123")
    assert again.status_code == 302
    assert client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=abc123").status_code == 302
    other = Client().post(f"/rate/start/{study.slug}/?PROLIFIC_PID=abc123")
    assert other.status_code == 200 and b'name="resume_code"' in other.content
    assert Rater.objects.filter(external_id="abc123").count() == 1
    assert Client().get(f"/rate/start/{study.slug}/").status_code == 400


def test_opening_a_start_link_writes_nothing_until_start_is_pressed():
    # A link preview or a mail scanner opening a worker's link must not take their id.
    study = build_study(prompts=1)
    url = f"/rate/start/{study.slug}/?PROLIFIC_PID=fresh-worker"
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and b'id="start-form"' in page.content
    assert not Rater.objects.exists() and "_auth_user_id" not in client.session
    # The worker presses Start (the form posts back to the link, worker id included)
    started = client.post(url)
    assert started.status_code == 302 and started["Location"] == f"/rate/{study.slug}/"
    assert Rater.objects.get().external_id == "fresh-worker"
    # ... and can still start: nobody took the id meanwhile
    assert Client().get(url).status_code == 200


def test_start_parameter_name_is_configurable_per_study():
    study = build_study(prompts=1, slug="mturk")
    study.external_id_param = "workerId"
    study.save()
    client = Client()
    assert client.get(f"/rate/start/{study.slug}/?PROLIFIC_PID=x").status_code == 400
    assert client.post(f"/rate/start/{study.slug}/?workerId=A1B2").status_code == 302
    assert Rater.objects.filter(external_id="A1B2").exists()


def test_quiz_page_qualifies_and_then_the_rating_page_opens():
    study = build_study(prompts=2, require_qualification=True)
    client = Client()
    client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=quiz-taker")
    instructions = client.get(f"/rate/{study.slug}/instructions/")
    assert b"Worked examples" in instructions.content and b"to-quiz" in instructions.content
    failed = client.post(f"/rate/{study.slug}/quiz/", {})
    assert failed.status_code == 400 and b"attempts left" in failed.content
    answers = right_quiz_answers(Rater.objects.get(external_id="quiz-taker").user)
    passed = client.post(f"/rate/{study.slug}/quiz/", answers)
    assert passed.status_code == 302
    page = client.get(f"/rate/{study.slug}/")
    assert page.status_code == 200 and b'id="video-left"' in page.content


def test_finish_page_shows_the_completion_code_only_when_done():
    study = build_study(prompts=1, raters_per_pair=1)
    rater = qualified_rater()
    client = Client()
    client.force_login(rater)
    assert client.get(f"/rate/{study.slug}/done/").status_code == 302
    judge(services.next_assignment(study=study, rater=rater))
    assert client.get(f"/rate/{study.slug}/").status_code == 302
    study.completion_url = "https://crowd.example/complete?cc={code}"
    study.save()
    done = client.get(f"/rate/{study.slug}/done/")
    assert done.status_code == 200 and study.completion_code.encode() in done.content
    assert f"https://crowd.example/complete?cc={study.completion_code}".encode() in done.content


def test_stopped_rater_sees_why_but_no_code():
    study = build_study(prompts=1)
    rater = qualified_rater()
    services.stop_rater(rater=rater.rater, reason="gold accuracy")
    client = Client()
    client.force_login(rater)
    page = client.get(f"/rate/{study.slug}/")
    assert page.status_code == 403 and b"quality checks" in page.content
    assert study.screenout_code.encode() not in page.content


def test_a_study_without_ties_hides_the_tie_choice():
    study = build_study(prompts=1, allow_ties=False)
    client = Client()
    client.force_login(qualified_rater())
    page = client.get(f"/rate/{study.slug}/").content.decode()
    assert 'value="tie"' not in page and "equally_good" not in page
    with_ties = build_study(prompts=1, slug="ties")
    assert 'value="tie"' in client.get(f"/rate/{with_ties.slug}/").content.decode()


def test_showing_the_rating_pages_claims_nothing_and_creates_no_profile():
    # Given a signed-in user who has never rated (no rater profile yet) and one with a profile
    study = build_study(prompts=2, min_watch_ms=0)
    newcomer = UserFactory()
    rater = qualified_rater()
    pages = [
        f"/rate/{study.slug}/",
        f"/rate/{study.slug}/done/",
        f"/rate/{study.slug}/instructions/",
        f"/rate/{study.slug}/quiz/",
        "/rate/",
        "/api/studies/",
        f"/api/studies/{study.slug}/",
        "/api/raters/me/",
    ]
    for user in (newcomer, rater):
        client = Client()
        client.force_login(user)
        before = (Assignment.objects.count(), Rater.objects.count())
        # When they open every rating page and poll the API, twice
        for url in pages * 2:
            assert client.get(url).status_code in (200, 302), url
        # Then no task was claimed and no profile created
        assert (Assignment.objects.count(), Rater.objects.count()) == before
    assert not Rater.objects.filter(user=newcomer).exists()


def test_the_rating_page_script_claims_with_a_post_and_a_reload_gets_the_same_task():
    study = build_study(prompts=2, min_watch_ms=0)
    client = Client()
    client.force_login(UserFactory())
    page = client.get(f"/rate/{study.slug}/")
    # The page is the shell: no task in it, only where to claim one.
    assert page.status_code == 200 and b'id="token" value=""' in page.content
    assert f"/api/studies/{study.slug}/next/".encode() in page.content
    assert Assignment.objects.count() == 0
    first = client.post(f"/api/studies/{study.slug}/next/")
    assert first.status_code == 200 and Rater.objects.count() == 1  # the profile, on a POST
    client.get(f"/rate/{study.slug}/")  # a reload ...
    again = client.post(f"/api/studies/{study.slug}/next/")
    assert again.json()["token"] == first.json()["token"]  # ... keeps the open task
    assert Assignment.objects.count() == 1
