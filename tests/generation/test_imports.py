"""Videos made elsewhere: every file checked, refusals with their reasons, nothing half-done."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from generation import imports, services
from generation.models import GenerationBatch, GenerationJob, Prompt, Video
from generation.video.export import read_mp4
from tests.generation.clips import make_audio_only, make_clip, truncate

pytestmark = pytest.mark.django_db
PROMPTS = ["a red circle moves left", "a blue square moves up", "a cat on a beach"]


@pytest.fixture
def imported():
    return services.register_variant(name="Gen-X API", config={"kind": "imported"}).variant


@pytest.fixture
def prompt_set():
    return services.get_or_create_prompt_set(name="imports", prompts=PROMPTS)


def _manifest(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted({k for row in rows for k in row}))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _transcode(batch: GenerationBatch) -> None:
    services.import_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)), worker="w")


def test_a_manifest_imports_each_file_once_and_again_adds_nothing(
    imported, prompt_set, tmp_path, _media_root
):
    make_clip(tmp_path / "clips" / "a.mp4", frames=8, width=96, height=64, fps=4)
    make_clip(tmp_path / "clips" / "b.mp4", frames=12, width=64, height=64, fps=8, seed=1)
    manifest = _manifest(
        tmp_path / "manifest.csv",
        [
            {"path": "clips/a.mp4", "prompt": " a red circle moves left ", "sample": 0},
            {"path": "clips/b.mp4", "prompt_id": "2", "sample": 3},
        ],
    )

    report = imports.import_videos(variant=imported, prompt_set=prompt_set, manifest=manifest)
    _transcode(report.batch)

    assert [f.status for f in report.files] == ["accepted", "accepted"]
    videos = {v.job.prompt.text: v for v in Video.objects.select_related("job__prompt")}
    red, blue = videos[PROMPTS[0]], videos[PROMPTS[1]]
    assert (red.frames, red.width, red.height, red.fps, red.job.seed) == (8, 96, 64, 4, 0)
    assert (blue.frames, blue.fps, blue.job.seed) == (12, 8, 3)
    assert read_mp4(_media_root / red.file.name).shape[0] == 8
    assert (_media_root / red.poster.name).stat().st_size > 0
    assert report.batch.kind == GenerationBatch.Kind.IMPORT
    report.batch.refresh_from_db()
    assert report.batch.status == GenerationBatch.Status.DONE

    again = imports.import_videos(variant=imported, prompt_set=prompt_set, manifest=manifest)

    assert [f.status for f in again.files] == ["imported already"] * 2
    assert again.batch == report.batch
    assert (Video.objects.count(), GenerationJob.objects.count()) == (2, 2)


def test_a_vbench_folder_matches_prompt_names_and_ids_and_lists_what_it_cannot(
    imported, prompt_set, tmp_path
):
    folder = tmp_path / "vbench"
    make_clip(folder / "a red circle moves left-0.mp4")
    make_clip(folder / "a red circle moves left-1.mp4", seed=1)
    make_clip(folder / "3.mp4", seed=2)  # a prompt id
    make_clip(folder / "a dog surfing-0.mp4", seed=3)
    (folder / "lookup.json").write_text("{}")

    report = imports.import_videos(variant=imported, prompt_set=prompt_set, folder=folder)

    outcome = {f.path: (f.status, f.prompt, f.sample) for f in report.files}
    assert outcome["a red circle moves left-1.mp4"] == ("accepted", PROMPTS[0], 1)
    assert outcome["3.mp4"] == ("accepted", PROMPTS[2], 0)
    assert outcome["a dog surfing-0.mp4"][0] == "unmatched"
    assert report.skipped_names == 1 and not report.written
    assert not GenerationJob.objects.exists(), "one unmatched file: nothing is imported"

    added = imports.import_videos(
        variant=imported, prompt_set=prompt_set, folder=folder, create_prompts=True
    )

    assert added.written and added.created_prompts == 1
    assert Prompt.objects.filter(prompt_set=prompt_set, text="a dog surfing").exists()
    assert GenerationJob.objects.count() == 4


def test_every_bad_file_is_refused_with_its_own_reason_and_nothing_is_recorded(
    imported, prompt_set, tmp_path, settings
):
    settings.JUICE_IMPORT_MAX_SECONDS = 2
    clips = tmp_path / "clips"
    good = make_clip(clips / "good.mp4")
    (clips / "text.mp4").write_text("not a video at all\n")
    truncate(make_clip(tmp_path / "whole.mp4", frames=24), clips / "truncated.mp4")
    whole = make_clip(tmp_path / "indexed.mp4", frames=48, fps=30, faststart=True)
    truncate(whole, clips / "cut.mp4", keep=0.6)
    (clips / "empty.mp4").write_bytes(b"")
    make_audio_only(clips / "audio.mp4")
    make_clip(clips / "long.mp4", frames=40, fps=8)
    make_clip(tmp_path / "secret.mp4")
    (clips / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    names = ["text", "truncated", "cut", "empty", "audio", "long", "link"]
    rows = [
        {"path": f"{name}.mp4", "prompt": PROMPTS[0], "sample": i} for i, name in enumerate(names)
    ]
    rows.append({"path": "../secret.mp4", "prompt": PROMPTS[1]})
    rows.append({"path": good.name, "prompt": PROMPTS[2]})
    manifest = _manifest(clips / "manifest.csv", rows)

    report = imports.import_videos(variant=imported, prompt_set=prompt_set, manifest=manifest)

    reasons = {f.path: f.reason for f in report.files if f.status == "refused"}
    assert reasons == {
        "text.mp4": reasons["text.mp4"],
        "truncated.mp4": reasons["truncated.mp4"],
        "cut.mp4": reasons["cut.mp4"],
        "empty.mp4": "empty file (0 bytes)",
        "audio.mp4": "no video stream (audio only)",
        "long.mp4": reasons["long.mp4"],
        "link.mp4": reasons["link.mp4"],
        "../secret.mp4": reasons["../secret.mp4"],
    }
    assert reasons["text.mp4"].startswith("not a video file ffmpeg can read")
    assert reasons["truncated.mp4"].startswith("a damaged or cut-short MP4")
    assert reasons["cut.mp4"].startswith("does not decode after ")
    assert reasons["long.mp4"].startswith("longer than the limit")
    assert reasons["link.mp4"].startswith("outside the manifest's folder")
    assert reasons["../secret.mp4"] == reasons["link.mp4"]
    assert len(set(reasons.values())) == 7, "each kind of failure says its own thing"
    assert not report.written and not GenerationJob.objects.exists()

    kept = imports.import_videos(
        variant=imported, prompt_set=prompt_set, manifest=manifest, skip_bad=True
    )
    assert kept.written and list(GenerationJob.objects.values_list("source", flat=True)) == [
        str(good.resolve())
    ]


def test_the_command_prints_each_file_and_refuses_clearly(imported, prompt_set, tmp_path, capsys):
    make_clip(tmp_path / "a red circle moves left-0.mp4")
    (tmp_path / "a blue square moves up-0.mp4").write_bytes(b"")
    with pytest.raises(CommandError, match="Nothing imported: 1 accepted, 1 refused"):
        call_command(
            "import_videos", variant=imported.slug, prompt_set=prompt_set.slug, folder=tmp_path
        )
    printed = capsys.readouterr().out
    assert "refused  a blue square moves up-0.mp4" in printed
    assert "(empty file (0 bytes))" in printed
    with pytest.raises(CommandError, match="No variant with slug 'nope'"):
        call_command("import_videos", variant="nope", prompt_set=prompt_set.slug, folder=tmp_path)
    with pytest.raises(CommandError, match="No prompt set with slug 'nope'"):
        call_command("import_videos", variant=imported.slug, prompt_set="nope", folder=tmp_path)


def test_only_an_imported_variant_takes_imports_and_it_cannot_be_rendered(prompt_set, tmp_path):
    rendered = services.get_or_create_variant(name="Emu", config={"kind": "emu", "steps": 1})
    imported = services.register_variant(name="Pika", config={"kind": "imported"}).variant
    with pytest.raises(ValidationError, match="not an imported variant"):
        imports.import_videos(variant=rendered, prompt_set=prompt_set, folder=tmp_path)
    with pytest.raises(ValidationError, match="imported variant: it has no model to render"):
        services.create_batch(name="b", prompt_set=prompt_set, variants=[imported])


def test_a_file_changed_since_it_was_checked_fails_its_job_with_the_reason(
    imported, prompt_set, tmp_path
):
    clip = make_clip(tmp_path / "a red circle moves left-0.mp4")
    report = imports.import_videos(variant=imported, prompt_set=prompt_set, folder=tmp_path)
    clip.write_bytes(b"")

    _transcode(report.batch)

    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.FAILED and job.attempts == 1
    assert job.error.endswith("empty file (0 bytes)")


def _zip(entries: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_staff_upload_a_zip_and_see_each_file_s_outcome(
    client, imported, prompt_set, tmp_path, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from tests.factories import StaffFactory, UserFactory

    settings.JUICE_IMPORT_DIR = tmp_path / "incoming"
    clip = make_clip(tmp_path / "c.mp4").read_bytes()
    url = reverse("generation:import")
    form = {"variant": imported.pk, "prompt_set": prompt_set.pk}

    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(StaffFactory())

    bad = client.post(url, {**form, "upload": SimpleUploadedFile("v.zip", _zip(
        {"vbench/a red circle moves left-0.mp4": clip, "vbench/a cat on a beach-0.mp4": b""}
    ))})  # fmt: skip
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "Nothing imported" in page and "empty file (0 bytes)" in page
    assert not GenerationJob.objects.exists()
    assert not any((tmp_path / "incoming").iterdir()), "a refused upload leaves no files"

    evil = client.post(url, {**form, "upload": SimpleUploadedFile("e.zip", _zip(
        {"../../escape.mp4": clip}
    ))})  # fmt: skip
    assert "would land outside its folder" in evil.content.decode()

    settings.JUICE_IMPORT_UPLOAD_MAX_MB = 0
    big = client.post(url, {**form, "upload": SimpleUploadedFile("b.zip", _zip({"x.mp4": clip}))})
    assert "the limit is 0 MB" in big.content.decode()
    settings.JUICE_IMPORT_UPLOAD_MAX_MB = 10

    good = client.post(url, {**form, "upload": SimpleUploadedFile("g.zip", _zip(
        {"vbench/a red circle moves left-0.mp4": clip, "vbench/a red circle moves left-1.mp4": clip}
    ))})  # fmt: skip
    assert "follow the import batch" in good.content.decode()
    sources = list(GenerationJob.objects.values_list("source", "seed"))
    assert sorted(seed for _, seed in sources) == [0, 1]
    assert all(Path(source).is_file() for source, _ in sources)


def test_an_upload_s_files_go_once_every_file_is_transcoded_and_stay_while_one_may_retry(
    imported, prompt_set, tmp_path, settings, _media_root
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.JUICE_IMPORT_DIR = tmp_path / "incoming"
    clip = make_clip(tmp_path / "c.mp4").read_bytes()
    imports.import_upload(
        variant=imported,
        prompt_set=prompt_set,
        files=[SimpleUploadedFile("k.zip", _zip({"a red circle moves left-0.mp4": clip}))],
    )
    imports.import_upload(
        variant=imported,
        prompt_set=prompt_set,
        files=[SimpleUploadedFile("g.zip", _zip({"a blue square moves up-0.mp4": clip}))],
    )
    kept_job = GenerationJob.objects.get(prompt__text=PROMPTS[0])
    gone_job = GenerationJob.objects.get(prompt__text=PROMPTS[1])
    kept_folder = Path(kept_job.source).relative_to(tmp_path / "incoming").parts[0]
    Path(kept_job.source).write_bytes(b"not a video any more")

    services.import_chunk(job_ids=[kept_job.pk, gone_job.pk], worker="w")

    gone_job.refresh_from_db()
    kept_job.refresh_from_db()
    assert gone_job.status == GenerationJob.Status.DONE
    assert kept_job.status == GenerationJob.Status.FAILED
    assert [p.name for p in (tmp_path / "incoming").iterdir()] == [kept_folder]
    assert Path(kept_job.source).is_file(), "a failed file stays for a retry"


def test_an_admin_s_own_folder_is_never_deleted_even_under_the_import_dir(
    imported, prompt_set, tmp_path, settings, _media_root
):
    settings.JUICE_IMPORT_DIR = tmp_path / "incoming"
    own = tmp_path / "incoming" / "team-renders"
    make_clip(own / "a red circle moves left-0.mp4")

    report = imports.import_videos(variant=imported, prompt_set=prompt_set, folder=own)
    _transcode(report.batch)

    assert report.batch.jobs.get().status == GenerationJob.Status.DONE
    assert (own / "a red circle moves left-0.mp4").is_file()
