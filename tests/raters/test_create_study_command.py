"""`manage.py create_study`: publishes like the builder; each refusal says why, writes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from raters.models import Comparison, Study, VariantPair
from tests.factories import GenerationBatchFactory, ModelVariantFactory, PromptFactory, VideoFactory
from tests.raters.helpers import build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    """Variants a, b, c with videos of the same three prompts in one batch; d elsewhere."""
    variants = {s: ModelVariantFactory(slug=s) for s in "abcd"}
    batch = GenerationBatchFactory()
    other = GenerationBatchFactory()
    for text in ("p1", "p2", "p3"):
        prompt = PromptFactory(prompt_set=batch.prompt_set, text=text)
        for slug in "abc":
            VideoFactory(job__batch=batch, job__variant=variants[slug], job__prompt=prompt)
    VideoFactory(
        job__batch=other,
        job__variant=variants["d"],
        job__prompt=PromptFactory(prompt_set=other.prompt_set, text="elsewhere"),
    )
    return batch


def _run(*args: str) -> str:
    out = StringIO()
    call_command("create_study", *args, stdout=out)
    return out.getvalue()


def test_the_command_publishes_each_variant_against_the_baseline(world):
    out = _run(
        "--slug",
        "abl",
        "--variants",
        "a,b,c",
        "--baseline",
        "a",
        "--raters-per-pair",
        "5",
        "--gold",
        "0",
        "--mode",
        "adaptive",
    )

    study = Study.objects.get(slug="abl")
    pairs = [(p.variant_a.slug, p.variant_b.slug) for p in study.pairs.order_by("id")]
    assert pairs == [("b", "a"), ("c", "a")]
    assert study.comparisons.filter(kind="real").count() == 6
    assert study.mode == "adaptive" and list(study.batches.all()) == [world]
    # 5 raters × 6 comparisons, plus mirrored repeats at the default 5% of all tasks.
    assert "6 comparisons" in out and "32 judgments" in out
    assert "/rate/start/abl/?PROLIFIC_PID=" in out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--variants", "a,zz", "--baseline", "a"], "No variant with slug 'zz'"),
        (["--variants", "a,d", "--baseline", "a", "--sources", "ALL"], "batch ids (numbers)"),
        (["--variants", "a,d", "--baseline", "a"], "no prompt and seed in common"),
        (["--variants", "a,b", "--baseline", "a", "--raters-per-pair", "0"], "at least 1"),
        (["--variants", "a,b", "--baseline", "c"], "'c' is not one of the chosen variants"),
        (["--variants", "a,b", "--sources", "999999"], "No generation batch with id 999999"),
        (["--variants", "a,b", "--pairs", "a-b"], "Pairs are written a:b"),
    ],
)
def test_each_refusal_prints_its_reason_and_creates_no_rows(world, args, reason):
    with pytest.raises(CommandError) as refused:
        _run("--slug", "new", "--gold", "0", *args)

    assert reason in str(refused.value)
    assert not Study.objects.exists()
    assert not VariantPair.objects.exists() and not Comparison.objects.exists()


def test_a_slug_already_taken_is_refused_and_the_old_study_is_untouched(world):
    taken = build_study(prompts=1, slug="taken")
    before = taken.comparisons.count()

    with pytest.raises(CommandError) as refused:
        _run("--slug", "taken", "--variants", "a,b", "--baseline", "a", "--gold", "0")

    assert "already taken" in str(refused.value)
    assert Study.objects.count() == 1 and taken.comparisons.count() == before
