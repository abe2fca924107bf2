"""Study builders shared by the raters and browser tests."""

from __future__ import annotations

import functools
from typing import Any

from django.core.files.base import ContentFile

from raters import services, studies
from raters.models import Study
from tests.factories import (
    GenerationBatchFactory,
    ModelVariantFactory,
    PromptFactory,
    UserFactory,
    VideoFactory,
    tiny_mp4_bytes,
)


@functools.lru_cache(maxsize=8)
def mp4_bytes(seed: int = 0, frames: int = 8, fps: int = 4) -> bytes:
    """A real H.264 MP4 of random frames (cached: encoding costs a subprocess)."""
    if (frames, fps) == (8, 4):
        return tiny_mp4_bytes(seed)
    import tempfile
    from pathlib import Path

    import numpy as np

    from generation.video.export import write_mp4

    # A square moving over a gradient: something a person can judge in a screenshot.
    size = 32
    ramp = np.linspace(40, 200, size, dtype=np.float32)
    background = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (size, 1)), np.full((size, size), 90.0)], -1
    )
    colour = np.array([[230, 60, 50], [250, 220, 40]][seed % 2], dtype=np.float32)
    pixels = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x = int(2 + (size - 12) * t / max(1, frames - 1))
        pixels[t, 10 + seed % 2 * 6 : 20 + seed % 2 * 6, x : x + 10] = colour
    if seed % 2:
        pixels = pixels[:, :, :, [2, 1, 0]]
    pixels = pixels.astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        write_mp4(pixels, path, fps=fps)
        return path.read_bytes()


def build_study(
    *,
    prompts: int = 6,
    seeds: int = 1,
    variants: int = 2,
    slug: str = "s1",
    frames: int = 8,
    fps: int = 4,
    frames_b: int | None = None,
    **options: Any,
) -> Study:
    """A study on a batch whose videos are real (tiny) MP4s, comparisons built by the service."""
    batch = GenerationBatchFactory()
    made = [ModelVariantFactory() for _ in range(variants)]
    prompt_rows = [PromptFactory(prompt_set=batch.prompt_set) for _ in range(prompts)]
    for index, variant in enumerate(made):
        length = frames_b if index == 1 and frames_b else frames
        for prompt in prompt_rows:
            for seed in range(seeds):
                VideoFactory(
                    job__batch=batch,
                    job__variant=variant,
                    job__prompt=prompt,
                    job__seed=seed,
                    file=ContentFile(mp4_bytes(index % 2, length, fps), name="v.mp4"),
                    frames=length,
                    fps=fps,
                )
    pairs = [(made[i], made[j]) for i in range(len(made)) for j in range(i + 1, len(made))]
    options.setdefault("gold_rate", 0.0)
    options.setdefault("mirror_rate", 0.0)
    options.setdefault("require_qualification", False)
    options.setdefault("min_watch_ms", 0)
    study = studies.create_study(
        name=f"Study {slug}", slug=slug, sources=[batch], pairs=pairs, **options
    )
    prepare_presentations(study)
    return study


def prepare_presentations(study: Study) -> None:
    """Prepare, here and now, the clips a worker would prepare for pairs of unlike formats."""
    from raters import presentation
    from raters.models import PresentedClip

    for clip_id in PresentedClip.objects.filter(study=study).values_list("pk", flat=True):
        presentation.prepare_clip(clip_id=clip_id)


def qualified_rater(**kwargs: Any) -> Any:
    user = UserFactory(**kwargs)
    services.qualify_rater(user=user)
    return user


def answer(side: str = "left", reasons: tuple[str, ...] = ("pixel_sharpness",)) -> Any:
    return services.Answer(side, reasons)


def faith(side: str = "left", reasons: tuple[str, ...] = ("spatial_alignment",)) -> Any:
    return services.Answer(side, reasons)


WATCHED = services.WatchReport(played_through=True, watch_ms=5000, time_spent_ms=6000)


def judge(assignment: Any, quality: str = "left", faithfulness: str = "left") -> Any:
    """A valid judgment on an assignment; tie answers get tie reasons."""
    q = answer(quality, ("equally_good",) if quality == "tie" else ("pixel_sharpness",))
    f = faith(faithfulness, ("equally_bad",) if faithfulness == "tie" else ("spatial_alignment",))
    return services.submit_judgment(assignment=assignment, quality=q, faithfulness=f, watch=WATCHED)


def right_quiz_answers(user: Any) -> dict[str, str]:
    """The right answers to the quiz paper this user's next attempt shows."""
    from raters import selectors

    paper = selectors.quiz_paper(rater=services.rater_profile(user=user))
    return {question.key: question.answer for question in paper}


def judgment_body(token: Any, **overrides: Any) -> dict[str, Any]:
    """A valid POST /api/judgments/ body for the task `token`, as the rating page sends it."""
    body: dict[str, Any] = {
        "token": token,
        "quality": "left",
        "quality_reasons": ["motion_smoothness"],
        "faithfulness": "tie",
        "faithfulness_reasons": ["equally_good"],
        "time_spent_ms": 4000,
        "watch_ms": 2500,
        "replays": 1,
        "seeks": 0,
        "played_through": True,
    }
    body.update(overrides)
    return body
