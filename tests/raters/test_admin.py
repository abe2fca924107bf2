"""The admin shows why a rater was stopped and its actions go through the services."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from raters import services
from raters.models import Comparison, Judgment, Rater
from tests.factories import StaffFactory
from tests.raters.helpers import build_study, judge, qualified_rater

pytestmark = pytest.mark.django_db


def test_admin_lists_stopped_raters_with_the_reason_and_can_reinstate():
    study = build_study(prompts=2, raters_per_pair=1)
    rater = qualified_rater()
    judge(services.next_assignment(study=study, rater=rater))
    services.stop_rater(rater=Rater.objects.get(user=rater), reason="Gold accuracy 1/4 (25%)")
    assert Judgment.objects.get().is_flagged
    staff = Client()
    staff.force_login(StaffFactory())
    listing = staff.get("/admin/raters/rater/?is_flagged__exact=1")
    assert listing.status_code == 200 and b"Gold accuracy 1/4 (25%)" in listing.content
    for model in ("study", "comparison", "assignment", "judgment", "goldclip", "variantpair"):
        assert staff.get(f"/admin/raters/{model}/").status_code == 200

    profile = Rater.objects.get(user=rater)
    staff.post(
        "/admin/raters/rater/",
        {"action": "reinstate", "_selected_action": [profile.pk]},
    )
    profile.refresh_from_db()
    assert not profile.is_flagged and not Judgment.objects.get().is_flagged
    assert Comparison.objects.filter(assigned_count=1).count() == 1


def test_build_gold_command():
    study = build_study(prompts=2)
    call_command("build_gold", study.slug, "--count", "1")
    assert study.comparisons.filter(kind=Comparison.Kind.GOLD).count() == 1


def _staff() -> Client:
    client = Client()
    client.force_login(StaffFactory())
    return client


def test_the_admin_add_form_leads_to_the_builder_and_creates_no_empty_study():
    from raters.models import Study

    client = _staff()
    shown = client.get("/admin/raters/study/add/", follow=True)
    posted = client.post("/admin/raters/study/add/", {"name": "x", "slug": "x"})

    assert shown.redirect_chain[-1][0] == "/staff/studies/new/"
    assert b"Studies are built in the study builder" in shown.content
    assert posted.status_code == 302 and posted["Location"] == "/staff/studies/new/"
    assert not Study.objects.exists()


def test_the_admin_warns_about_a_study_with_0_comparisons_and_keeps_structure_read_only():
    from tests.factories import StudyFactory

    empty = StudyFactory(slug="empty")
    client = _staff()

    page = client.get(f"/admin/raters/study/{empty.pk}/change/")
    client.post(
        f"/admin/raters/study/{empty.pk}/change/",
        {"name": "renamed", "slug": "hijacked", "mode": "fixed", "raters_per_pair": 3},
    )

    assert page.status_code == 200
    assert b"This study has 0 comparisons" in page.content
    assert b"/staff/studies/empty/" in page.content
    empty.refresh_from_db()
    assert empty.slug == "empty"  # structure is set by the builder, not here


def test_the_gold_action_says_why_it_built_nothing():
    from tests.factories import StudyFactory

    empty = StudyFactory(slug="empty")
    response = _staff().post(
        "/admin/raters/study/",
        {"action": "build_gold", "_selected_action": [empty.pk]},
        follow=True,
    )

    assert b"no real comparisons to degrade" in response.content
