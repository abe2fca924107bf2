"""What the browser tests share: where screenshots go, and how a rater signs in and waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "artifacts"
BOTH_READY = (
    "() => ['video-left','video-right'].every(id => document.getElementById(id).readyState >= 2)"
)
TIMES = (
    "() => [document.getElementById('video-left').currentTime, "
    "document.getElementById('video-right').currentTime]"
)


def login(page: Any, live_server: Any, user: Any, next_url: str = "") -> None:
    query = f"?next={next_url}" if next_url else ""
    page.goto(f"{live_server.url}/accounts/login/{query}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")


def wait_submit_enabled(page: Any) -> None:
    page.wait_for_function("() => !document.getElementById('submit').disabled", timeout=15000)
