"""Building a study: sources, pairing designs, the preview, publishing, pause and close."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from raters import services, studies
from raters.models import Comparison, Judgment, Study, VariantPair
from tests.factories import (
    GenerationBatchFactory,
    JudgmentFactory,
    ModelVariantFactory,
    PromptFactory,
    VideoFactory,
)
from tests.raters.helpers import WATCHED, answer, build_study, faith, judge, qualified_rater

pytestmark = pytest.mark.django_db


def _batch_with(variants, texts, seeds=(0,)):  # type: ignore[no-untyped-def]
    """A finished batch (its own prompt set) with a video per variant, prompt text and seed."""
    batch = GenerationBatchFactory()
    prompts = [PromptFactory(prompt_set=batch.prompt_set, text=text) for text in texts]
    for variant in variants:
        for prompt in prompts:
            for seed in seeds:
                VideoFactory(
                    job__batch=batch, job__variant=variant, job__prompt=prompt, job__seed=seed
                )
    return batch


def _design(**overrides):  # type: ignore[no-untyped-def]
    fields = dict(name="Ablation", slug="ablation", gold_count=0, gold_rate=0.0, mirror_rate=0.0)
    fields.update(overrides)
    return studies.StudyDesign(**fields)


def test_two_variants_from_different_batches_are_paired_on_prompt_text_and_seed():
    a, b = ModelVariantFactory(), ModelVariantFactory()
    first = _batch_with([a], ["a red circle", "a blue square", "only in the first"], seeds=(0, 1))
    second = _batch_with([b], ["a red circle", "a blue square"], seeds=(1, 2))
    design = _design(sources=(first, second), variants=(a, b), baseline=b)

    study = studies.publish_study(design=design)

    comparisons = list(study.comparisons.select_related("video_a__job", "video_b__job"))
    # Seed 1 of the two shared prompts; seed 0/2 and the third prompt have no partner.
    assert len(comparisons) == 2
    for c in comparisons:
        assert c.video_a.job.batch_id == first.pk and c.video_b.job.batch_id == second.pk
        assert c.video_a.job.seed == c.video_b.job.seed == 1
        assert c.video_a.job.prompt.text == c.video_b.job.prompt.text
    assert set(study.batches.all()) == {first, second}
    # One prompt row per text, so "a prompt once per rater" still holds across sources.
    assert len({c.prompt_id for c in comparisons}) == 2


def test_pairing_designs_baseline_all_and_explicit():
    a, b, c = (ModelVariantFactory() for _ in range(3))
    batch = _batch_with([a, b, c], ["p1", "p2"])
    base = dict(sources=(batch,), variants=(a, b, c))

    baseline = studies.design_pairs(_design(**base, baseline=c))
    every = studies.design_pairs(_design(**base, pairing=studies.Pairing.ALL))
    explicit = studies.design_pairs(
        _design(**base, pairing=studies.Pairing.EXPLICIT, explicit_pairs=((b, a),))
    )

    assert baseline == [(a, c), (b, c)]
    assert every == [(a, b), (a, c), (b, c)]
    assert explicit == [(b, a)]


def test_the_preview_counts_comparisons_judgments_checks_and_cost():
    a, b, c = (ModelVariantFactory() for _ in range(3))
    batch = _batch_with([a, b, c], ["p1", "p2", "p3", "p4"])
    design = _design(
        sources=(batch,),
        variants=(a, b, c),
        baseline=a,
        raters_per_pair=5,
        gold_rate=0.1,
        gold_count=2,
        mirror_rate=0.1,
    )

    plan = studies.plan_study(design=design, pay_per_hour=12.0)

    assert [p.comparisons for p in plan.pairs] == [4, 4]
    assert plan.comparisons == 8 and plan.prompts == 4
    assert plan.rated_judgments == 40
    assert plan.check_tasks == 10  # 40 real tasks are 80% of 50
    assert plan.judgments == 50
    # No earlier judgments: the stated default time per judgment.
    assert plan.seconds_measured_from == 0
    assert plan.seconds_per_judgment == studies.DEFAULT_SECONDS_PER_JUDGMENT
    assert plan.rater_hours == pytest.approx(50 * 60 / 3600)
    assert plan.cost == pytest.approx(plan.rater_hours * 12.0)
    assert plan.sample is not None and plan.sample.prompt == "p1"
    assert plan.sample.video_a.job.variant_id == b.pk
    assert not Study.objects.exists()  # a preview writes nothing


def test_the_estimate_uses_the_median_time_of_earlier_real_judgments():
    for ms in [10_000] * 10 + [30_000] * 11:
        JudgmentFactory(time_spent_ms=ms)
    JudgmentFactory(time_spent_ms=999_000, is_simulated=True)

    seconds, measured = studies.seconds_per_judgment()

    assert (seconds, measured) == (30.0, 21)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (dict(raters_per_pair=0), "raters_per_pair", "at least 1"),
        (dict(sources=()), "sources", "at least one source"),
        (dict(baseline=None), "baseline", "baseline"),
        (dict(slug="Not A Slug"), "slug", "lower-case"),
        (dict(gold_rate=0.1, gold_count=0), "gold_count", "gold"),
    ],
)
def test_a_bad_design_is_refused_with_its_reason_and_writes_nothing(overrides, field, words):
    a, b = ModelVariantFactory(), ModelVariantFactory()
    batch = _batch_with([a, b], ["p1"])
    design = _design(**{"sources": (batch,), "variants": (a, b), "baseline": a, **overrides})

    with pytest.raises(ValidationError) as refused:
        studies.publish_study(design=design)

    assert words in " ".join(refused.value.message_dict[field])
    assert not Study.objects.exists() and not Comparison.objects.exists()


def test_variants_without_videos_or_prompts_in_common_are_refused():
    a, b, c = (ModelVariantFactory() for _ in range(3))
    first = _batch_with([a], ["p1"])
    second = _batch_with([b], ["p2"])

    with pytest.raises(ValidationError) as apart:
        studies.plan_study(design=_design(sources=(first, second), variants=(a, b), baseline=a))
    with pytest.raises(ValidationError) as missing:
        studies.plan_study(design=_design(sources=(first,), variants=(a, c), baseline=a))

    assert "no prompt and seed in common" in str(apart.value)
    assert "has no finished videos" in str(missing.value)


def test_a_taken_slug_is_refused():
    existing = build_study(prompts=1, slug="taken")
    a, b = existing.pairs.get().variant_a, existing.pairs.get().variant_b

    with pytest.raises(ValidationError) as refused:
        studies.publish_study(
            design=_design(
                slug="taken", sources=tuple(existing.batches.all()), variants=(a, b), baseline=a
            )
        )

    assert "already taken" in str(refused.value)
    assert Study.objects.count() == 1


def test_publishing_builds_comparisons_and_gold_checks_with_the_chosen_settings():
    a, b = ModelVariantFactory(), ModelVariantFactory()
    batch = _batch_with([a, b], ["p1", "p2", "p3"])
    design = _design(
        sources=(batch,),
        variants=(a, b),
        baseline=b,
        raters_per_pair=3,
        gold_count=2,
        gold_rate=0.2,
        mode=Study.Mode.ADAPTIVE,
        allow_ties=False,
        completion_url="https://example.org/done?cc={code}",
        external_id_param="workerId",
    )

    study = studies.publish_study(design=design)

    assert study.comparisons.filter(kind=Comparison.Kind.REAL).count() == 3
    assert study.comparisons.filter(kind=Comparison.Kind.GOLD).count() == 2
    pair = VariantPair.objects.get(study=study)
    assert (pair.variant_a, pair.variant_b) == (a, b)
    assert (study.raters_per_pair, study.mode, study.allow_ties) == (3, "adaptive", False)
    assert study.external_id_param == "workerId" and study.completion_code


# --- Pause, resume and close (a submit after the stop is refused after the grace window) ----


def _claimed(study: Study):  # type: ignore[no-untyped-def]
    return services.next_assignment(study=study, rater=qualified_rater())


def test_a_paused_study_hands_out_no_new_task_and_resumes():
    study = build_study(prompts=2)
    studies.pause_study(study=study)

    with pytest.raises(services.RatingRefused) as refused:
        services.next_task(study=study, rater=qualified_rater())
    assert refused.value.code == "closed" and "paused" in refused.value.message

    studies.resume_study(study=study)
    assert _claimed(study) is not None


def test_a_task_claimed_before_the_close_is_accepted_within_the_grace_window(settings):
    settings.JUICE_CLOSE_GRACE_MINUTES = 10
    study = build_study(prompts=2)
    task = _claimed(study)
    studies.close_study(study=study)

    judgment = judge(task)

    assert judgment.pk and Judgment.objects.count() == 1


def test_a_submit_after_the_grace_window_is_refused_with_a_clear_message(settings):
    settings.JUICE_CLOSE_GRACE_MINUTES = 10
    study = build_study(prompts=2)
    task = _claimed(study)
    studies.close_study(study=study)
    Study.objects.filter(pk=study.pk).update(deactivated_at=timezone.now() - timedelta(minutes=11))

    with pytest.raises(services.RatingRefused) as refused:
        services.submit_judgment(
            assignment=task, quality=answer(), faithfulness=faith(), watch=WATCHED
        )

    assert refused.value.code == "closed" and "closed" in refused.value.message
    assert not Judgment.objects.exists()


def test_a_study_switched_off_without_a_time_refuses_submits_at_once():
    """The old way to stop a study (untick is_active) kept taking answers for ever."""
    study = build_study(prompts=2)
    task = _claimed(study)
    Study.objects.filter(pk=study.pk).update(is_active=False)

    with pytest.raises(services.RatingRefused):
        services.submit_judgment(
            assignment=task, quality=answer(), faithfulness=faith(), watch=WATCHED
        )
    assert not Judgment.objects.exists()


def test_a_closed_study_cannot_be_resumed():
    study = build_study(prompts=1)
    studies.close_study(study=study)

    with pytest.raises(ValidationError):
        studies.resume_study(study=study)
    study.refresh_from_db()
    assert study.state == "closed" and not study.is_active


def test_the_rating_page_of_a_paused_or_closed_study_says_so():
    from django.test import Client

    study = build_study(prompts=1, slug="pp")
    client = Client()
    client.force_login(qualified_rater())
    studies.pause_study(study=study)
    paused = client.get("/rate/pp/")
    crowd = Client().get("/rate/start/pp/?PROLIFIC_PID=w1")
    studies.close_study(study=study)
    closed = client.get("/rate/pp/")

    assert paused.status_code == 200 and b"This study is paused" in paused.content
    assert b"This study is paused" in crowd.content
    assert b"This study is closed" in closed.content
    assert study.screenout_code.encode() not in closed.content
