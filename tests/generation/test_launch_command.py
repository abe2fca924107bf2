"""`manage.py launch_batch`: variants by slug, a prompt file, seeds, and a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evalsite.celery import app
from generation import services
from generation.models import GenerationBatch, PromptSet, Video
from tests.generation.fakes import FakeGenerator, install

TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in this process as soon as they are sent (after the commit)."""
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_launch_and_wait_renders_every_variant_prompt_seed(
    monkeypatch, tmp_path: Path, eager_tasks
):
    # Given two variants, a prompt file and tasks run in-process as soon as they are sent
    install(monkeypatch, FakeGenerator())
    services.get_or_create_variant(name="Fact", slug="fact", config=TINY)
    services.get_or_create_variant(name="Direct", slug="direct", config={**TINY, "mode": "direct"})
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\na dog\na bird\n")
    out, err = StringIO(), StringIO()

    # When the command launches them with three seeds and waits
    call_command(
        "launch_batch",
        "--variants",
        "fact,direct",
        "--prompts",
        str(prompts),
        "--seeds",
        "3",
        "--wait",
        stdout=out,
        stderr=err,
    )

    # Then all 2 × 3 × 3 videos exist and the bar reached the end
    batch = GenerationBatch.objects.get()
    assert batch.name == "prompts" and batch.jobs.count() == 18
    assert Video.objects.filter(job__batch=batch).count() == 18
    assert "18 jobs queued" in out.getvalue() and "Finished: 18 done, 0 failed" in out.getvalue()
    assert "18/18" in err.getvalue()


@pytest.mark.django_db
def test_unknown_variants_and_bad_files_are_refused_before_anything_is_created(tmp_path: Path):
    services.get_or_create_variant(name="Fact", slug="fact", config=TINY)
    good, bad = tmp_path / "p.txt", tmp_path / "p.csv"
    good.write_text("a cat\n")
    bad.write_bytes(b"prompt,id\na,1\nb,1\n")

    with pytest.raises(CommandError, match="No variant with slug 'nope'. Known: fact"):
        call_command("launch_batch", "--variants", "fact,nope", "--prompts", str(good))
    with pytest.raises(CommandError, match="Duplicate id '1' on lines 2 and 3"):
        call_command("launch_batch", "--variants", "fact", "--prompts", str(bad))
    with pytest.raises(CommandError, match="No such prompt file"):
        call_command("launch_batch", "--variants", "fact", "--prompts", str(tmp_path / "x.txt"))
    assert not PromptSet.objects.exists() and not GenerationBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_wait_prints_each_failed_job_with_its_reason(
    monkeypatch, tmp_path: Path, eager_tasks, settings
):
    # Given a model that always fails and one attempt per job
    settings.JUICE_JOB_MAX_ATTEMPTS = 1
    install(monkeypatch, FakeGenerator(fail_always=RuntimeError("weights are NaN")))
    services.get_or_create_variant(name="Fact", slug="fact", config=TINY)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\na dog\n")
    out = StringIO()

    # When the command launches and waits
    call_command(
        "launch_batch",
        "--variants",
        "fact",
        "--prompts",
        str(prompts),
        "--wait",
        stdout=out,
        stderr=StringIO(),
    )

    # Then it says which jobs failed and why, not only how many
    text = out.getvalue()
    assert "Finished: 0 done, 2 failed" in text
    assert text.count("RuntimeError: weights are NaN") == 2
    assert "prompt 'a cat'" in text and "prompt 'a dog'" in text
