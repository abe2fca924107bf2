"""The analysis dashboard in Chromium: staff see the table and live plotly charts; raters 403."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from raters.models import Assignment, Comparison
from tests.analysis.studies import build_study
from tests.factories import (
    AssignmentFactory,
    JudgmentFactory,
    PromptFactory,
    StaffFactory,
    UserFactory,
    VideoFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_dashboard(settings):  # type: ignore[no-untyped-def]
    settings.ANALYSIS_REFRESH_SECONDS = 1
    cache.clear()  # summaries are cached by study id and counts, which repeat across tests


def _login(page, live_server, user, next_url):  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")


def test_staff_see_the_table_and_charts_which_refresh_as_ratings_arrive(page, live_server):
    from playwright.sync_api import expect

    study = build_study(prompts=3)
    url = f"/staff/analysis/{study.slug}/"
    _login(page, live_server, StaffFactory(), url)

    table = page.locator("#ablation-table")
    expect(table).to_contain_text("direct-t2v")
    expect(table.locator("tbody tr")).to_have_count(2)
    # plotly (served by the site itself) has drawn at least three charts as SVG
    charts = page.locator(".chart.js-plotly-plot")
    expect(charts.nth(2)).to_be_visible()
    assert charts.count() >= 3
    for k in range(charts.count()):
        expect(charts.nth(k).locator("svg.main-svg").first).to_be_attached()
    expect(page.locator('[data-title="Download plot as SVG"]').first).to_be_attached()
    expect(page.locator('a[href$="ablation-table.csv"]')).to_be_visible()

    # when a new comparison is rated, the table follows without a reload
    pair = study.pairs.order_by("id").first()
    prompt = PromptFactory(prompt_set=study.batches.get().prompt_set)
    videos = [
        VideoFactory(job__batch=study.batches.get(), job__variant=variant, job__prompt=prompt)
        for variant in (pair.variant_a, pair.variant_b)
    ]
    extra = Comparison.objects.create(
        study=study, pair=pair, prompt=prompt, video_a=videos[0], video_b=videos[1]
    )
    for _ in range(5):
        assignment = AssignmentFactory(
            comparison=extra, rater=UserFactory(), status=Assignment.Status.DONE
        )
        JudgmentFactory(assignment=assignment)
    row = table.locator("tbody tr").first
    expect(row.locator("td.n-judgments")).to_have_text("15")
    expect(row.locator("td.n-judgments")).to_have_text("20", timeout=20_000)
    expect(row.locator("td.n-comparisons")).to_have_text("4")
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)


def test_raters_get_403(page, live_server):
    study = build_study(prompts=1)
    _login(page, live_server, UserFactory(), "/rate/")
    response = page.goto(f"{live_server.url}/staff/analysis/{study.slug}/")
    assert response.status == 403
    assert "ablation" not in page.content().lower()
