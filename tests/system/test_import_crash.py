"""A worker SIGKILLed mid-import, then the import run again: each video recorded once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from generation import imports, services
from generation.models import GenerationJob, Video
from tests.generation import workers as w
from tests.generation.clips import make_clip
from tests.system.test_generation_crash import wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = GenerationJob.Status


def test_a_worker_killed_mid_import_then_a_rerun_records_each_video_once(
    tmp_path: Path, _media_root: Path
):
    # Given 12 clips in a manifest, imported for an imported variant
    w.reset_broker()
    prompts = [f"a red circle moves left, take {i}" for i in range(12)]
    rows = []
    for i, prompt in enumerate(prompts):
        make_clip(tmp_path / f"{i}.mp4", frames=60, width=160, height=128, fps=12, seed=i)
        rows.append({"path": f"{i}.mp4", "prompt": prompt, "sample": 0})
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "prompt", "sample"])
        writer.writeheader()
        writer.writerows(rows)
    variant = services.register_variant(name="Elsewhere", config={"kind": "imported"}).variant
    prompt_set = services.get_or_create_prompt_set(name="crash import", prompts=prompts)
    report = imports.import_videos(variant=variant, prompt_set=prompt_set, manifest=manifest)
    batch = report.batch
    assert report.written and batch.jobs.count() == 12

    # When the worker is killed with SIGKILL in the middle of a chunk
    first = w.start_worker("i1", media_root=_media_root, queues="default")
    try:
        wait_until(
            lambda: (
                batch.jobs.filter(status=Status.DONE).count() >= 1
                and batch.jobs.filter(status=Status.RUNNING).count() >= 2
            ),
            timeout_s=120,
            what="the worker to be mid-chunk",
        )
        w.kill(first)
    finally:
        w.stop(first)
    done_before = batch.jobs.filter(status=Status.DONE).count()
    assert done_before < 12

    # ... and the same import is run again, with a fresh worker
    again = imports.import_videos(variant=variant, prompt_set=prompt_set, manifest=manifest)
    assert {f.status for f in again.files} == {"imported already"}
    with w.running_workers(["i2"], media_root=_media_root, queues="default"):
        wait_until(
            lambda: batch.jobs.filter(status=Status.DONE).count() == 12,
            timeout_s=180,
            what="every import job to finish",
        )

    # Then each file became exactly one video, and no file is left over
    assert Video.objects.filter(job__batch=batch).count() == 12
    assert not batch.jobs.exclude(status=Status.DONE).exists()
    on_disk = sorted(p.name for p in (_media_root / "videos").iterdir())
    assert len(on_disk) == 12
    assert {Path(v.file.name).name for v in Video.objects.all()} == set(on_disk)
