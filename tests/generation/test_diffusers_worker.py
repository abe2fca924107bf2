"""Saved diffusers pipelines rendered by real Celery worker processes, end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from generation import selectors, services
from generation.models import GenerationBatch, ModelVariant, Video
from generation.video.config import parse_config
from generation.video.diffusers_pipeline import DiffusersGenerator
from generation.video.export import read_mp4
from tests.generation import workers as w
from tests.generation.tiny_pipelines import variant_config

pytestmark = pytest.mark.django_db(transaction=True)
PROMPTS = ["a red circle moves left", "a blue square moves up"]


def _render(name: str, variants: list[ModelVariant], media_root: Path) -> GenerationBatch:
    """One batch, rendered by a worker process of its own, stopped afterwards."""
    prompt_set = services.get_or_create_prompt_set(name="diffusers worker", prompts=PROMPTS)
    batch = services.create_batch(
        name=name, prompt_set=prompt_set, variants=variants, seeds=1, sample_batch=2
    )
    process = w.start_worker(name, media_root=media_root, env={"HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 300
        while True:
            counts = selectors.batch_progress(batch=batch)
            if counts["done"] + counts["failed"] == counts["total"]:
                break
            assert process.poll() is None, "the worker process died"
            assert time.monotonic() < deadline, f"the batch did not finish: {counts}"
            time.sleep(0.3)
    finally:
        w.stop(process)
    assert counts["failed"] == 0, list(batch.jobs.values_list("error", flat=True))
    return batch


def _decoded(batch: GenerationBatch, media_root: Path) -> dict[tuple[int, str, int], np.ndarray]:
    videos = Video.objects.filter(job__batch=batch).select_related("job__prompt")
    return {
        (v.job.variant_id, v.job.prompt.text, v.job.seed): read_mp4(media_root / v.file.name)
        for v in videos
    }


def test_three_pipeline_families_render_through_two_worker_processes_seed_for_seed(
    tiny_pipelines, _media_root
):
    # Given a CogVideoX, an LTX and a Wan pipeline registered as variants
    w.reset_broker()
    variants = [
        services.register_variant(
            name=f"Tiny {family}", config=variant_config(family, folder)
        ).variant
        for family, folder in tiny_pipelines.items()
    ]

    # When one worker process renders a batch, and another process the same batch again
    first = _render("w1", variants, _media_root)
    second = _render("w2", variants, _media_root)

    # Then each video is recorded with the frames, size and fps the pipeline returns ...
    first_frames = _decoded(first, _media_root)
    assert len(first_frames) == 6
    for variant in variants:
        config = parse_config(variant.config)
        returned = DiffusersGenerator(config, "cpu").generate(PROMPTS, [0, 0])
        for prompt, video in zip(PROMPTS, returned, strict=True):
            row = Video.objects.get(
                job__batch=first, job__variant=variant, job__prompt__text=prompt
            )
            assert (row.frames, row.height, row.width, row.fps) == (
                *video.frames.shape[:3],
                video.fps,
            )
            decoded = first_frames[(variant.pk, prompt, 0)]
            assert decoded.shape[0] == video.frames.shape[0]
            scale = decoded.shape[1] // video.frames.shape[1]  # shown upscaled, nearest
            shown = decoded[:, scale // 2 :: scale, scale // 2 :: scale].astype(int)
            assert np.abs(shown - video.frames).mean() < 6, "the MP4 holds what was returned"
    # ... and the same seed gives identical frames in the other worker process.
    second_frames = _decoded(second, _media_root)
    assert first_frames.keys() == second_frames.keys()
    for key, frames in first_frames.items():
        assert np.array_equal(frames, second_frames[key]), key
