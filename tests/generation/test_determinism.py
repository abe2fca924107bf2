"""Same seed, same video: through chunking, sampling batches and MP4 encoding."""

from __future__ import annotations

import pytest

from generation import services
from generation.models import GenerationBatch, Video
from tests.generation.fakes import FakeGenerator, install

pytestmark = pytest.mark.django_db
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


def render(batch: GenerationBatch) -> dict[tuple[str, int], bytes]:
    ids = list(batch.jobs.order_by("-pk").values_list("pk", flat=True))  # a different order
    services.render_chunk(job_ids=ids, worker="w@host")
    return {
        (v.job.prompt.text, v.job.seed): v.file.read()
        for v in Video.objects.filter(job__batch=batch).select_related("job__prompt")
    }


def test_the_same_variant_prompt_and_seed_give_byte_identical_mp4s_across_batches(monkeypatch):
    # Given the same variant and prompts rendered in two batches chunked differently
    install(monkeypatch, FakeGenerator())
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompts = services.get_or_create_prompt_set(name="p", prompts=["a cat", "a dog", "a bird"])
    first = services.create_batch(
        name="one", prompt_set=prompts, variants=[variant], seeds=2, sample_batch=4
    )
    second = services.create_batch(
        name="two", prompt_set=prompts, variants=[variant], seeds=3, sample_batch=1
    )

    # When both are rendered
    a, b = render(first), render(second)

    # Then every (prompt, seed) they share is the same file, byte for byte, and seeds differ
    assert set(a) < set(b) and len(a) == 6
    for key in a:
        assert a[key] == b[key], f"{key} differs between batches"
    assert b[("a cat", 0)] != b[("a cat", 1)] != b[("a cat", 2)]
    assert b[("a cat", 0)] != b[("a dog", 0)]


def test_the_shipped_pipeline_renders_a_seed_to_the_same_mp4_in_two_batches():
    # Given the shipped factorized zero-SNR model, one step, and two batches with the same jobs
    variant = services.get_or_create_variant(
        name="Shipped, 1 step", config={"mode": "factorized", "steps": 1, "frames": 2}
    )
    prompts = services.get_or_create_prompt_set(name="q", prompts=["a cat", "a dog"])
    batches = [
        services.create_batch(name=n, prompt_set=prompts, variants=[variant], seeds=2)
        for n in ("one", "two")
    ]

    # When both are rendered by the real pipeline
    first, second = (render(batch) for batch in batches)

    # Then each (prompt, seed) is the same MP4, byte for byte, and different seeds differ
    assert len(first) == 4 and first == second
    assert first[("a cat", 0)] != first[("a cat", 1)]
