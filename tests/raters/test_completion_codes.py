"""Crowd codes are paid for work: the completion code only after real tasks, the screen-out code
only after a failed quiz, and neither through any other route (page, API, done page)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from raters import quiz, selectors, services
from raters.models import Rater
from tests.factories import StaffFactory, UserFactory
from tests.raters.helpers import build_study, judge, qualified_rater

pytestmark = pytest.mark.django_db


def _codes_anywhere(client: Client, study) -> set[str]:  # type: ignore[no-untyped-def]
    """Every crowd code the rater behind `client` can read, through every route."""
    pages = [
        client.get(f"/rate/{study.slug}/done/"),
        client.get(f"/rate/{study.slug}/"),
        client.get("/api/studies/", HTTP_ACCEPT="application/json"),
        client.get(f"/api/studies/{study.slug}/", HTTP_ACCEPT="application/json"),
        client.post(f"/api/studies/{study.slug}/next/", HTTP_ACCEPT="application/json"),
    ]
    text = "".join(page.content.decode() for page in pages)
    return {code for code in (study.completion_code, study.screenout_code) if code in text}


def _full_study(slug: str = "full", **options):  # type: ignore[no-untyped-def]
    """A study whose only slot is taken by another rater's finished judgment."""
    study = build_study(prompts=1, raters_per_pair=1, slug=slug, **options)
    worker = qualified_rater()
    judge(services.next_assignment(study=study, rater=worker))
    return study, worker


def test_a_signed_in_user_who_never_qualified_gets_no_code_from_a_full_study():
    # Given a study with no free slot left and a user who never took the quiz
    study, _worker = _full_study(require_qualification=True)
    client = Client()
    client.force_login(UserFactory())
    # Then no route gives them a code, and the API does not call them finished
    assert _codes_anywhere(client, study) == set()
    detail = client.get(f"/api/studies/{study.slug}/", HTTP_ACCEPT="application/json").json()
    assert not detail["finished"] and "completion_code" not in detail


def test_a_qualified_rater_who_rated_nothing_gets_no_code():
    study, _worker = _full_study()
    client = Client()
    client.force_login(qualified_rater())
    assert _codes_anywhere(client, study) == set()
    done = client.get(f"/rate/{study.slug}/done/")
    assert done.status_code == 200 and b"no completion code" in done.content.lower()


def test_the_rater_who_did_the_work_gets_the_completion_code_everywhere():
    study, worker = _full_study()
    client = Client()
    client.force_login(worker)
    assert _codes_anywhere(client, study) == {study.completion_code}
    detail = client.get(f"/api/studies/{study.slug}/", HTTP_ACCEPT="application/json").json()
    assert detail["finished"] and detail["completion_code"] == study.completion_code


def test_the_quota_earns_the_code_while_the_study_still_has_work():
    # Given a quota of two tasks in a study of four prompts
    study = build_study(prompts=4, tasks_per_rater=2)
    rater = qualified_rater()
    judge(services.next_assignment(study=study, rater=rater))
    assert selectors.crowd_code(study=study, rater=rater) is None
    judge(services.next_assignment(study=study, rater=rater))
    code = selectors.crowd_code(study=study, rater=rater)
    assert code is not None and code.code == study.completion_code


def test_a_study_that_runs_out_early_pays_only_from_its_stated_minimum():
    # Given a study that asks for at least two real tasks and has one prompt left
    study = build_study(prompts=3, raters_per_pair=1, tasks_per_rater=5, min_tasks_for_code=2)
    first, second = qualified_rater(), qualified_rater()
    judge(services.next_assignment(study=study, rater=first))
    judge(services.next_assignment(study=study, rater=first))
    judge(services.next_assignment(study=study, rater=second))
    # Then the rater with two real tasks done gets the code, the one with one does not
    assert services.next_assignment(study=study, rater=first) is None
    assert services.next_assignment(study=study, rater=second) is None
    assert selectors.crowd_code(study=study, rater=first) is not None
    assert selectors.crowd_code(study=study, rater=second) is None


def test_a_rater_stopped_by_quality_control_gets_no_code():
    study = build_study(prompts=2)
    rater = qualified_rater()
    judge(services.next_assignment(study=study, rater=rater))
    services.stop_rater(rater=rater.rater, reason="gold accuracy")
    client = Client()
    client.force_login(rater)
    assert _codes_anywhere(client, study) == set()
    assert client.get(f"/rate/{study.slug}/").status_code == 403


def test_the_screen_out_code_goes_only_to_a_worker_who_failed_the_quiz():
    study = build_study(prompts=2, require_qualification=True)
    client = Client()
    client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=quiz-failer")
    assert _codes_anywhere(client, study) == set()
    for attempt in range(quiz.MAX_ATTEMPTS):
        response = client.post(f"/rate/{study.slug}/quiz/", {})
        shown = study.screenout_code.encode() in response.content
        assert shown == (attempt == quiz.MAX_ATTEMPTS - 1)
    assert _codes_anywhere(client, study) == {study.screenout_code}
    api = APIClient()
    api.force_authenticate(UserFactory())
    assert study.screenout_code not in api.get(f"/api/studies/{study.slug}/").content.decode()


def test_the_completion_list_names_only_the_workers_who_earned_the_shared_code():
    # Given a quota of two tasks: one worker does both, one does one, one is stopped by QC
    study = build_study(prompts=4, raters_per_pair=3, tasks_per_rater=2, slug="paid")
    done, half, stopped = (
        services.start_crowd_session(study=study, external_id=worker)
        for worker in ("W-done", "W-half", "W-stopped")
    )
    for user in (done, half, stopped):
        services.qualify_rater(user=user)
    for user, tasks in ((done, 2), (half, 1), (stopped, 2)):
        for _ in range(tasks):
            judge(services.next_assignment(study=study, rater=user))
    services.stop_rater(rater=stopped.rater, reason="gold accuracy")
    staff = Client()
    staff.force_login(StaffFactory())

    # When staff download the list of workers to approve
    response = staff.get(f"/staff/studies/{study.slug}/completed.csv")
    page = staff.get(f"/staff/studies/{study.slug}/")

    # Then it names the one worker who did the quota; the code is the same for all of them
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert response.content.decode() == "W-done\n"
    assert b"completed.csv" in page.content
    # and it is for staff only
    worker = Client()
    worker.force_login(done)
    assert worker.get(f"/staff/studies/{study.slug}/completed.csv").status_code == 403
    # an id from before start links refused formula-like ones is written inert
    Rater.objects.filter(user=done).update(external_id="@SUM(A1)")
    response = staff.get(f"/staff/studies/{study.slug}/completed.csv")
    assert response.content.decode() == "'@SUM(A1)\n"
