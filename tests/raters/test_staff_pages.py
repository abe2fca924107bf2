"""Staff study pages: builder → preview → publish, the study page, pause/close, pay file."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from raters import services, studies
from raters.models import Judgment, Study
from tests.factories import (
    GenerationBatchFactory,
    ModelVariantFactory,
    PromptFactory,
    StaffFactory,
    UserFactory,
    VideoFactory,
)
from tests.raters.helpers import build_study, judge, qualified_rater

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(StaffFactory())
    return client


@pytest.fixture
def batch():  # type: ignore[no-untyped-def]
    batch = GenerationBatchFactory(name="Spring ablation")
    variants = [ModelVariantFactory(slug="design"), ModelVariantFactory(slug="base")]
    batch.variants.set(variants)
    for text in ("p1", "p2", "p3"):
        prompt = PromptFactory(prompt_set=batch.prompt_set, text=text)
        for variant in variants:
            VideoFactory(job__batch=batch, job__variant=variant, job__prompt=prompt)
    return batch


def _form(batch: Any, **overrides: Any) -> dict[str, Any]:
    variants = list(batch.variants.order_by("slug"))
    data = {
        "name": "Ablation",
        "slug": "ablation",
        "sources": [batch.pk],
        "variants": [v.pk for v in variants],
        "pairing": "baseline",
        "baseline": variants[0].pk,
        "raters_per_pair": 5,
        "mode": "fixed",
        "gold_count": 0,
        "gold_rate": 0,
        "mirror_rate": 0,
        "min_watch_ms": 2000,
        "tasks_per_rater": 0,
        "external_id_param": "PROLIFIC_PID",
        "pay_per_hour": "12.00",
        "action": "preview",
    }
    data.update(overrides)
    return data


def test_the_builder_from_a_batch_page_preselects_the_batch_and_its_variants(staff, batch):
    page = staff.get(f"/staff/studies/new/?batch={batch.pk}")

    form = page.context["form"]
    assert page.status_code == 200
    assert form.initial["sources"] == [batch.pk]
    assert sorted(form.initial["variants"]) == sorted(batch.variants.values_list("pk", flat=True))
    assert form.initial["slug"] == "spring-ablation"


def test_preview_shows_counts_cost_and_a_sample_and_writes_nothing(staff, batch):
    page = staff.post("/staff/studies/new/", _form(batch))

    plan = page.context["plan"]
    assert page.status_code == 200
    assert plan.comparisons == 3 and plan.judgments == 15
    assert plan.cost == pytest.approx(15 * 60 / 3600 * 12)
    body = page.content.decode()
    assert 'id="publish"' in body and "/staff/studies/clip/" in body
    assert not Study.objects.exists()


def test_publish_creates_the_study_and_shows_its_links(staff, batch):
    response = staff.post("/staff/studies/new/", _form(batch, action="publish"), follow=True)

    study = Study.objects.get(slug="ablation")
    assert study.comparisons.count() == 3
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == "/staff/studies/ablation/"
    assert "/rate/start/ablation/?PROLIFIC_PID=" in body and "/rate/ablation/" in body
    assert "/staff/analysis/ablation/" in body


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"raters_per_pair": 0}, "greater than or equal to 1"),
        ({"sources": []}, "This field is required"),
        ({"variants": ["999999"]}, "Select a valid choice"),
        ({"baseline": ""}, "Pick the baseline"),
        ({"pairing": "explicit", "explicit_pairs": "design:nobody"}, "Not among the chosen"),
        ({"pairing": "explicit", "explicit_pairs": "no colon"}, "Write each pair as a:b"),
        ({"gold_rate": "lots"}, "Enter a number"),
        ({"completion_url": "javascript:alert(1)"}, "Enter a valid URL"),
    ],
)
def test_bad_builder_input_gives_form_errors_never_a_500(staff, batch, overrides, message):
    for action in ("preview", "publish"):
        response = staff.post("/staff/studies/new/", _form(batch, action=action, **overrides))

        assert response.status_code == 200
        assert message in response.content.decode()
    assert not Study.objects.exists()


def test_the_study_page_shows_progress_raters_and_a_pay_file(staff):
    study = build_study(prompts=3, raters_per_pair=2, slug="live")
    worker = services.start_crowd_session(study=study, external_id="W-1")
    services.qualify_rater(user=worker)
    for _ in range(2):
        judge(services.next_assignment(study=study, rater=worker))
    Judgment.objects.update(time_spent_ms=30_000)
    idle = qualified_rater()  # claimed nothing: owed nothing

    page = staff.get("/staff/studies/live/?per_task=0.50&bonus=1.00&min_gold_accuracy=0.8")
    progress = staff.get("/staff/studies/live/progress.json").json()
    pay = staff.get("/staff/studies/live/bonus.csv?per_task=0.50&bonus=1.00")

    assert page.status_code == 200
    row = page.context["raters"][0]
    assert (row.worker_id, row.tasks, str(row.amount), str(row.hourly)) == (
        "W-1",
        2,
        "1.00",
        "60.00",
    )
    assert progress["judgments"] == 2 and progress["needed"] == 6
    assert progress["raters_active"] == 1 and progress["pairs"][0]["ci_width"] < 1
    # No gold answered: no bonus; the idle rater is not in the file.
    assert pay.content.decode() == "W-1,1.00\n"
    assert idle.username not in pay.content.decode()


def test_ids_a_spreadsheet_would_run_as_formulas_are_inert_in_the_pay_file(staff):
    # Start links refuse such worker ids now, but raters from before that check keep theirs,
    # and site usernames may start with + - @: the pay file, which staff open in a
    # spreadsheet, writes them with a leading apostrophe (amounts are plain numbers)
    from raters.models import Rater

    study = build_study(prompts=3, raters_per_pair=2, slug="pay")
    crowd = services.start_crowd_session(study=study, external_id="W-9")
    Rater.objects.filter(user=crowd).update(external_id='=HYPERLINK("http://x","pay")')
    site = qualified_rater()
    site.username = "-1+1"
    site.save(update_fields=["username"])
    for worker in (crowd, site):
        services.qualify_rater(user=worker)
        judge(services.next_assignment(study=study, rater=worker))

    lines = staff.get("/staff/studies/pay/bonus.csv?per_task=0.50").content.decode().splitlines()

    assert sorted(lines) == sorted(["'-1+1,0.50", '"\'=HYPERLINK(""http://x"",""pay"")",0.50'])


def test_a_bad_pay_rule_is_a_clear_400(staff):
    build_study(prompts=1, slug="s")
    response = staff.get("/staff/studies/s/bonus.csv?per_task=-1")
    assert response.status_code == 400 and b"per_task" in response.content


def test_pause_resume_and_close_from_the_study_page(staff):
    study = build_study(prompts=2, slug="ctl")

    staff.post("/staff/studies/ctl/pause/")
    assert Study.objects.get(pk=study.pk).state == "paused"
    staff.post("/staff/studies/ctl/resume/")
    assert Study.objects.get(pk=study.pk).state == "open"
    staff.post("/staff/studies/ctl/close/")
    refused = staff.post("/staff/studies/ctl/resume/", follow=True)

    assert Study.objects.get(pk=study.pk).state == "closed"
    assert b"A closed study cannot be resumed" in refused.content
    assert staff.post("/staff/studies/ctl/explode/").status_code == 403


def test_exports_download_one_row_per_judgment(staff):
    study = build_study(prompts=2, slug="exp")
    judge(services.next_assignment(study=study, rater=qualified_rater()))

    csv = staff.get("/staff/studies/exp/judgments.csv")
    jsonl = staff.get("/staff/studies/exp/judgments.jsonl")

    assert csv.status_code == 200 and len(b"".join(csv.streaming_content).splitlines()) == 2
    assert len(b"".join(jsonl.streaming_content).splitlines()) == 1
    assert staff.get("/staff/studies/exp/judgments.exe").status_code == 404


def test_staff_pages_are_for_staff_only():
    study = build_study(prompts=1, slug="priv")
    rater = Client()
    rater.force_login(UserFactory())
    for url in (
        "/staff/",
        "/staff/studies/",
        "/staff/studies/new/",
        "/staff/studies/priv/",
        "/staff/studies/priv/progress.json",
        "/staff/studies/priv/bonus.csv",
        "/staff/studies/priv/completed.csv",
        f"/staff/studies/clip/{study.comparisons.first().video_a_id}/video",
    ):
        assert rater.get(url).status_code == 403, url
        assert Client().get(url).status_code == 302, url
    assert rater.post("/staff/studies/priv/close/").status_code == 403
    assert Study.objects.get(pk=study.pk).state == "open"


def test_the_staff_home_links_every_part(staff):
    build_study(prompts=1, slug="home")
    body = staff.get("/staff/").content.decode()
    for link in ("/staff/generation/", "/staff/studies/new/", "/staff/analysis/", "/admin/"):
        assert f'href="{link}' in body
    assert "/staff/studies/home/" in body and "Make a study" in body


def test_studies_publish_through_the_page_the_same_as_through_the_service(staff, batch):
    staff.post("/staff/studies/new/", _form(batch, action="publish", slug="via-page"))
    design = studies.StudyDesign(
        name="x",
        slug="via-service",
        sources=(batch,),
        variants=tuple(batch.variants.order_by("slug")),
        baseline=batch.variants.order_by("slug").first(),
        gold_count=0,
        gold_rate=0,
        mirror_rate=0,
    )
    studies.publish_study(design=design)

    def shape(slug: str) -> list[tuple[int, int]]:
        return list(
            Study.objects.get(slug=slug)
            .comparisons.order_by("video_a_id")
            .values_list("video_a_id", "video_b_id")
        )

    assert shape("via-page") == shape("via-service")
