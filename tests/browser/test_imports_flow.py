"""Videos made elsewhere, end to end: a manifest import and a VBench folder import paired in one
study, a comparison rated in headless Chromium, and the judgment in an export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.core.management import call_command

from generation import imports
from generation import services as generation
from raters import studies
from raters.models import Judgment
from tests.browser.helpers import BOTH_READY, login, wait_submit_enabled
from tests.factories import UserFactory
from tests.generation.clips import make_clip
from tests.raters.helpers import prepare_presentations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PROMPTS = ["a red circle moves left", "a blue square moves up"]


def _transcode(batch) -> None:  # type: ignore[no-untyped-def]
    generation.import_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)))


def test_a_manifest_and_a_vbench_folder_are_rated_against_each_other_and_exported(
    page, live_server, tmp_path: Path
):
    # Given one system's clips listed in a manifest (256x256, 4 fps, 8 frames) ...
    prompt_set = generation.get_or_create_prompt_set(name="elsewhere", prompts=PROMPTS)
    gen_x = generation.register_variant(name="Gen-X", config={"kind": "imported"}).variant
    pika = generation.register_variant(name="Pika", config={"kind": "imported"}).variant
    (tmp_path / "m").mkdir()
    with (tmp_path / "m" / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "prompt", "sample"])
        for i, prompt in enumerate(PROMPTS):
            make_clip(tmp_path / "m" / f"clip{i}.mp4", frames=8, width=256, height=256, fps=4)
            writer.writerow([f"clip{i}.mp4", prompt, 0])
    # ... and another's in a VBench-named folder (320x480, 8 fps, 17 frames)
    for i, prompt in enumerate(PROMPTS):
        make_clip(
            tmp_path / "vb" / f"{prompt}-0.mp4", frames=17, width=320, height=480, fps=8, seed=i
        )
    from_manifest = imports.import_videos(
        variant=gen_x, prompt_set=prompt_set, manifest=tmp_path / "m" / "manifest.csv"
    )
    from_folder = imports.import_videos(variant=pika, prompt_set=prompt_set, folder=tmp_path / "vb")
    for report in (from_manifest, from_folder):
        assert report.written and report.count("accepted") == 2
        _transcode(report.batch)

    # When a study pairs them across the two imports and a rater rates one comparison
    study = studies.create_study(
        name="Gen-X vs Pika",
        slug="elsewhere",
        sources=[from_manifest.batch, from_folder.batch],
        pairs=[(gen_x, pika)],
        raters_per_pair=1,
        require_qualification=False,
        gold_rate=0.0,
        mirror_rate=0.0,
        min_watch_ms=500,
        tasks_per_rater=1,
    )
    assert study.comparisons.count() == 2
    prepare_presentations(study)
    login(page, live_server, UserFactory())
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    sizes = page.evaluate(
        "() => ['video-left','video-right'].map(id => { const v = document.getElementById(id);"
        " return [v.videoWidth, v.videoHeight, v.duration]; })"
    )
    assert sizes[0] == pytest.approx(sizes[1], abs=1e-3), "one presentation for both"
    wait_submit_enabled(page)
    for key in ("e", "2", "d", "7", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => document.body.innerText.includes('All done')", timeout=10000)

    # Then the judgment is in the export, against the two imported variants
    judgment = Judgment.objects.get()
    assert judgment.quality_reasons == ["motion_smoothness"]
    out = tmp_path / "export.csv"
    call_command("export_results", study=study.slug, format="csv", output=out)
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert (rows[0]["variant_a"], rows[0]["variant_b"]) == ("gen-x@v1", "pika@v1")
    assert page.outside_requests == []
