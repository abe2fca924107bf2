"""A whole evaluation in the browser, with only what the README says: a staff user builds a
study from a finished batch, previews and publishes it; a rater rates a pair; the dashboard
shows the judgment. No shell, no code. Screenshots of each staff page go to var/artifacts/."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from generation.models import GenerationBatch
from raters.models import Judgment, Study
from tests.browser.helpers import ARTIFACTS, BOTH_READY
from tests.factories import (
    GenerationBatchFactory,
    ModelVariantFactory,
    PromptFactory,
    StaffFactory,
    UserFactory,
    VideoFactory,
)
from tests.raters.helpers import mp4_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE_READY = (
    "() => ['sample-left','sample-right'].every(id => document.getElementById(id).readyState >= 2)"
)


@pytest.fixture(autouse=True)
def _fresh_dashboard(settings):  # type: ignore[no-untyped-def]
    settings.ANALYSIS_REFRESH_SECONDS = 1
    cache.clear()


def _finished_batch() -> GenerationBatch:
    """What `launch_batch` leaves behind: two variants' real MP4s for three prompts, done."""
    batch = GenerationBatchFactory(name="Spring ablation", status=GenerationBatch.Status.DONE)
    variants = [
        ModelVariantFactory(name="Factorized, zero-SNR", slug="factorized"),
        ModelVariantFactory(name="Direct, zero-SNR", slug="direct"),
    ]
    batch.variants.set(variants)
    texts = ("a red circle moves left", "a yellow square moves right", "a red circle grows")
    for text in texts:
        prompt = PromptFactory(prompt_set=batch.prompt_set, text=text)
        for index, variant in enumerate(variants):
            VideoFactory(
                job__batch=batch,
                job__variant=variant,
                job__prompt=prompt,
                file=ContentFile(mp4_bytes(index, 16, 8), name="v.mp4"),
                frames=16,
                fps=8,
                width=32,
                height=32,
            )
    return batch


def _login(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")


def test_staff_build_preview_publish_a_rater_rates_and_the_dashboard_shows_it(browser, live_server):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    batch = _finished_batch()
    staff_user = StaffFactory()
    staff = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    staff.set_default_timeout(15_000)

    # The README: staff start at /staff/; a finished batch's page has "Make a study".
    _login(staff, live_server.url, staff_user.username)
    staff.goto(f"{live_server.url}/staff/")
    staff.screenshot(path=str(ARTIFACTS / "staff-home.png"), full_page=True)
    staff.click(f"text={batch.name}")
    expect(staff.locator("#make-study")).to_be_visible()
    staff.screenshot(path=str(ARTIFACTS / "batch-page.png"), full_page=True)
    staff.click("#make-study")
    expect(staff.locator("h1")).to_have_text("Build a study")
    expect(staff.locator("#id_slug")).to_have_value("spring-ablation")
    expect(staff.locator(f"input[name=sources][value='{batch.pk}']")).to_be_checked()
    staff.check("input[name=pairing][value=baseline]")
    staff.select_option("#id_baseline", label="Direct, zero-SNR (v1)")
    staff.fill("#id_raters_per_pair", "1")
    staff.fill("#id_gold_count", "1")
    staff.fill("#id_gold_rate", "0")
    staff.fill("#id_mirror_rate", "0")
    staff.uncheck("#id_require_qualification")
    staff.fill("#id_min_watch_ms", "1000")
    staff.fill("#id_pay_per_hour", "15")
    staff.screenshot(path=str(ARTIFACTS / "study-builder.png"), full_page=True)

    staff.click("#preview")
    expect(staff.locator("#plan-comparisons")).to_have_text("3")
    expect(staff.locator("#plan-judgments")).to_have_text("3")
    expect(staff.locator("#plan-cost")).to_have_text("0.75")  # 3 × 60 s at 15 an hour
    staff.wait_for_function(SAMPLE_READY)
    staff.screenshot(path=str(ARTIFACTS / "study-preview.png"), full_page=True)
    assert not Study.objects.exists()

    staff.click("#publish")
    expect(staff.locator("h1")).to_contain_text("Study of Spring ablation")
    rater_link = staff.locator("#rater-link").get_attribute("href")
    study = Study.objects.get(slug="spring-ablation")
    assert study.comparisons.filter(kind="real").count() == 3
    assert study.comparisons.filter(kind="gold").count() == 1

    # A rater follows the link and rates one pair.
    rater_user = UserFactory()
    rater = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    _login(rater, live_server.url, rater_user.username)
    rater.goto(rater_link)
    rater.wait_for_function(BOTH_READY, timeout=15_000)
    rater.wait_for_function("() => !document.getElementById('submit').disabled", timeout=15_000)
    for key in ("q", "1", "a", "6", "Enter"):
        rater.keyboard.press(key)
    rater.wait_for_function(
        "() => document.getElementById('progress-done').innerText === '2'", timeout=10_000
    )
    assert Judgment.objects.filter(assignment__rater=rater_user).count() == 1

    # The study page counts it live; its dashboard link shows the judgment in the table.
    staff.reload()
    expect(staff.locator("[data-field=judgments]")).to_have_text("1")
    expect(staff.locator("#rater-table tbody tr")).to_have_count(1)
    staff.fill("#id_per_task", "0.40")
    staff.click("text=Apply the rule")
    expect(staff.locator("#rater-table tbody td").nth(5)).to_have_text("0.40")
    staff.screenshot(path=str(ARTIFACTS / "study-page.png"), full_page=True)
    staff.click("#dashboard-link")
    expect(staff.locator("#ablation-table td.n-judgments").first).to_have_text("1")
