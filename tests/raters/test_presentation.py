"""Blinding across sources: two clips of any formats reach the rater in one presentation."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from django.core.files.base import ContentFile

from generation.models import GenerationBatch
from generation.video.probe import probe
from raters import presentation, selectors, services, studies
from raters.models import Comparison, PresentedClip
from tests.factories import GenerationBatchFactory, ModelVariantFactory, PromptFactory, VideoFactory
from tests.generation.clips import make_clip
from tests.raters.helpers import qualified_rater

pytestmark = pytest.mark.django_db
# What an MP4 writer always puts in; anything else (title, comment, a source file name) would
# be metadata that could tell the clips apart.
CONTAINER_TAGS = {
    "major_brand",
    "minor_version",
    "compatible_brands",
    "encoder",
    "handler_name",
    "vendor_id",
    "language",
}


def _imported(batch: GenerationBatch, prompt, clip: Path, **fields):  # type: ignore[no-untyped-def]
    variant = ModelVariantFactory(config={"kind": "imported"})
    video = VideoFactory(
        job__batch=batch,
        job__variant=variant,
        job__prompt=prompt,
        file=ContentFile(clip.read_bytes(), name="v.mp4"),
        **fields,
    )
    return variant, video


def test_two_formats_are_served_alike_once_prepared(
    client, tmp_path, django_capture_on_commit_callbacks
):
    # Given 8 frames at 256x256 and 4 fps, and 49 frames at 480x720 and 8 fps, of one prompt
    batch = GenerationBatchFactory(kind=GenerationBatch.Kind.IMPORT)
    prompt = PromptFactory(prompt_set=batch.prompt_set)
    small = make_clip(tmp_path / "small.mp4", frames=8, width=256, height=256, fps=4)
    large = make_clip(tmp_path / "large.mp4", frames=49, width=480, height=720, fps=8, seed=1)
    a, _ = _imported(batch, prompt, small, frames=8, width=256, height=256, fps=4)
    b, _ = _imported(batch, prompt, large, frames=49, width=480, height=720, fps=8)

    # When they are paired in a study
    with django_capture_on_commit_callbacks() as sent:
        study = studies.create_study(
            name="across sources", slug="across", sources=[batch], pairs=[(a, b)],
            raters_per_pair=1, require_qualification=False, gold_rate=0.0, mirror_rate=0.0,
            min_watch_ms=0,
        )  # fmt: skip
    comparison = Comparison.objects.get(study=study)
    rater = qualified_rater()

    # Then it waits for its two clips, one preparation task each ...
    assert len(sent) == 2 and not comparison.is_ready
    assert services.next_assignment(study=study, rater=rater) is None
    for clip in PresentedClip.objects.all():
        assert presentation.prepare_clip(clip_id=clip.pk)
        assert not presentation.prepare_clip(clip_id=clip.pk), "a second run does nothing"
    comparison.refresh_from_db()
    assert comparison.is_ready

    # ... and the two files a rater gets cannot be told apart by their format
    assignment = services.next_assignment(study=study, rater=rater)
    payload = selectors.task_payload(assignment_id=assignment.pk, study=study, progress={})
    client.force_login(rater)
    served = {}
    for side in ("left", "right"):
        response = client.get(payload[side]["video"])
        assert response.status_code == 200
        path = tmp_path / f"served-{side}.mp4"
        path.write_bytes(b"".join(response.streaming_content))
        headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
        served[side] = (probe(path), path.stat().st_size, headers, path)
    (left, left_size, left_headers, left_path), (right, right_size, right_headers, right_path) = (
        served["left"],
        served["right"],
    )
    shape = (left.width, left.height, left.fps, left.frames, left.seconds)
    assert shape == (right.width, right.height, right.fps, right.frames, right.seconds)
    assert shape == (170, 254, 4.0, 8, 2.0)
    assert payload["fps"] == 4
    assert max(left_size, right_size) / min(left_size, right_size) < 2
    assert left_headers == right_headers
    assert "Content-Disposition" not in left_headers
    for path in (left_path, right_path):
        with av.open(str(path)) as container:
            assert not container.streams.audio
            tags = dict(container.metadata) | dict(container.streams.video[0].metadata)
        assert set(tags) <= CONTAINER_TAGS, "no title, comment or source name in the file"
    with av.open(str(left_path)) as l_c, av.open(str(right_path)) as r_c:
        assert dict(l_c.metadata) == dict(r_c.metadata)
    for field in ("file", "poster"):
        names = [getattr(c, field).name for c in PresentedClip.objects.all()]
        assert all(Path(n).name[:32].isalnum() for n in names), names


def test_a_pair_already_alike_is_shown_as_stored(tmp_path):
    batch = GenerationBatchFactory(kind=GenerationBatch.Kind.IMPORT)
    prompt = PromptFactory(prompt_set=batch.prompt_set)
    clip = make_clip(tmp_path / "c.mp4", frames=8, width=64, height=64, fps=4)
    a, _ = _imported(batch, prompt, clip, frames=8, width=64, height=64, fps=4)
    b, _ = _imported(batch, prompt, clip, frames=8, width=64, height=64, fps=4)

    study = studies.create_study(
        name="alike", slug="alike", sources=[batch], pairs=[(a, b)], require_qualification=False
    )

    comparison = Comparison.objects.get(study=study)
    assert comparison.is_ready and comparison.shown_a is None
    assert not PresentedClip.objects.exists()


def test_prepared_clips_go_with_their_study(tmp_path):
    batch = GenerationBatchFactory(kind=GenerationBatch.Kind.IMPORT)
    prompt = PromptFactory(prompt_set=batch.prompt_set)
    a, _ = _imported(
        batch, prompt, make_clip(tmp_path / "a.mp4", fps=4), fps=4, width=64, height=64
    )
    b, _ = _imported(
        batch, prompt, make_clip(tmp_path / "b.mp4", fps=8), fps=8, width=64, height=64
    )
    study = studies.create_study(
        name="gone", slug="gone", sources=[batch], pairs=[(a, b)], require_qualification=False
    )
    assert PresentedClip.objects.count() == 2

    study.delete()

    assert not PresentedClip.objects.exists() and not Comparison.objects.exists()
