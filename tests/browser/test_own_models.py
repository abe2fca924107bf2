"""A team's own diffusers pipeline rated against the built-in family, in headless Chromium."""

from __future__ import annotations

import pytest

from generation import services as generation
from raters import studies
from raters.models import Judgment
from tests.browser.helpers import BOTH_READY, login, wait_submit_enabled
from tests.factories import UserFactory
from tests.generation.tiny_pipelines import variant_config
from tests.raters.helpers import prepare_presentations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pair_of_a_diffusers_variant_and_a_built_in_one_is_rated(
    page, live_server, tiny_pipelines
):
    # Given a batch rendered by the real pipelines: the built-in family and a saved LTX folder
    built_in = generation.register_variant(
        name="Emu factorized", config={"kind": "emu", "steps": 2}
    ).variant
    own = generation.register_variant(
        name="Our LTX", config=variant_config("ltx", tiny_pipelines["ltx"])
    ).variant
    prompt_set = generation.get_or_create_prompt_set(
        name="own models", prompts=["a red circle moves left"]
    )
    batch = generation.create_batch(name="own", prompt_set=prompt_set, variants=[own, built_in])
    generation.render_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)))
    assert batch.jobs.filter(status="done").count() == 2
    study = studies.create_study(
        name="Own vs built-in",
        slug="own",
        sources=[batch],
        pairs=[(own, built_in)],
        raters_per_pair=1,
        require_qualification=False,
        gold_rate=0.0,
        mirror_rate=0.0,
        min_watch_ms=500,
    )
    prepare_presentations(study)  # 8 frames at 4 fps against 9 at 8: one presentation
    rater = UserFactory()

    # When a rater watches the pair and answers both questions with reasons
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    wait_submit_enabled(page)
    for key in ("q", "1", "a", "6", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => document.body.innerText.includes('All done')", timeout=10000)

    # Then the judgment is stored against the pair of the two kinds
    judgment = Judgment.objects.get()
    comparison = judgment.assignment.comparison
    assert {comparison.video_a.job.variant, comparison.video_b.job.variant} == {own, built_in}
    assert judgment.quality_reasons == ["pixel_sharpness"]
    assert page.outside_requests == []
