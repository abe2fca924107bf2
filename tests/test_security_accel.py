"""Clips handed to nginx: with JUICE_MEDIA_ACCEL_PREFIX set, the rater clip view answers with
X-Accel-Redirect (evalsite.accel) instead of streaming, after the same ownership checks."""

from __future__ import annotations

import pytest
from django.test import Client

from raters.models import Assignment
from tests.factories import UserFactory, make_comparison

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_assignment():  # type: ignore[no-untyped-def]
    rater = UserFactory(username="accel-rater")
    assignment = Assignment.objects.create(
        comparison=make_comparison(), rater=rater, left_is_a=False
    )
    return rater, assignment


def test_clip_view_hands_the_file_to_nginx_when_configured(settings, own_assignment):
    settings.JUICE_MEDIA_ACCEL_PREFIX = "/_protected_media/"
    rater, assignment = own_assignment
    client = Client()
    client.force_login(rater)
    response = client.get(f"/rate/clip/{assignment.token}/left/video", HTTP_RANGE="bytes=0-")
    # left is B here: nginx is told to send video B's stored file, the body stays empty
    expected = assignment.comparison.video_b.file.name
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_protected_media/{expected}"
    assert response["Content-Type"] == "video/mp4"
    assert not getattr(response, "streaming", False) and response.content == b""


def test_clip_view_still_checks_ownership_before_handing_off(settings, own_assignment):
    settings.JUICE_MEDIA_ACCEL_PREFIX = "/_protected_media/"
    _rater, assignment = own_assignment
    client = Client()
    client.force_login(UserFactory(username="someone-else"))
    response = client.get(f"/rate/clip/{assignment.token}/left/video")
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


def test_without_the_setting_the_clip_is_streamed_with_ranges(settings, own_assignment):
    settings.JUICE_MEDIA_ACCEL_PREFIX = ""
    rater, assignment = own_assignment
    client = Client()
    client.force_login(rater)
    response = client.get(f"/rate/clip/{assignment.token}/left/video", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206 and "X-Accel-Redirect" not in response
    assert len(b"".join(response.streaming_content)) == 10
