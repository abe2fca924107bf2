"""The launch page in Chromium: upload a prompt file, launch, watch progress reach 100%.

A real Celery worker process renders the batch (embedded broker and SQLite in the normal pass).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generation import services
from generation.models import GenerationBatch, Video
from tests.factories import StaffFactory
from tests.generation import workers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}
CSV = b"id,prompt,category\nc1,a red circle moves left,shapes\nc2,a blue square moves up,shapes\n"


def test_staff_upload_a_prompt_file_launch_and_see_progress_reach_100(
    page, live_server, _media_root: Path
):
    from playwright.sync_api import expect

    # Given a staff member, a variant and a worker process
    staff = StaffFactory()
    services.get_or_create_variant(name="Tiny", config=TINY)
    workers.reset_broker()
    worker = workers.start_worker("browser", media_root=_media_root, stub_model=workers.STUB_MODEL)
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/staff/generation/")
        page.fill("input[name=username]", staff.username)
        page.fill("input[name=password]", "pw-for-tests")
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name="Launch a generation batch")).to_be_visible()

        # When a file without a prompt column is uploaded, the page says so and nothing starts
        page.fill("#id_name", "browser batch")
        page.get_by_label("Tiny (v1)").check()
        page.set_input_files(
            "#id_prompt_file", {"name": "p.csv", "mimeType": "text/csv", "buffer": b"text\nx\n"}
        )
        page.click("button:has-text('Launch')")
        expect(page.get_by_role("alert")).to_contain_text("no 'prompt' column")
        assert not GenerationBatch.objects.exists()

        # and when a good CSV is uploaded with two seeds and launched
        page.get_by_label("Tiny (v1)").check()
        page.set_input_files(
            "#id_prompt_file", {"name": "prompts.csv", "mimeType": "text/csv", "buffer": CSV}
        )
        page.fill("#id_seeds", "2")
        page.click("button:has-text('Launch')")

        # Then the progress page fills up by itself to 100%, 4 of 4 done
        expect(page).to_have_url(re.compile(r"/staff/generation/batches/\d+/$"))
        expect(page.locator("[data-field=percent]")).to_have_text("100.0%", timeout=120_000)
        expect(page.locator("[data-field=done]")).to_have_text("4")
        expect(page.locator("#variants tbody td").nth(1)).to_have_text("4")
        assert worker.poll() is None
    finally:
        workers.stop(worker)
    assert Video.objects.filter(job__batch__name="browser batch").count() == 4
