"""Writes for videos made elsewhere: import a manifest or a folder as an imported variant's videos.

An import is planned first and written after: every file is matched to a prompt of the set and
decoded once (`video.probe`), and the plan lists each file with its outcome. Unless told to skip
bad files, a plan with any refused or unmatched file writes nothing. Accepted files become jobs
of the variant's import batch (one per variant and prompt set), with the file as their `source`;
Celery tasks on the `default` queue transcode them to the delivery format and record them through
the same exactly-once path as rendered videos (`services.import_chunk`). Importing the same files
again adds nothing, and sends unfinished jobs to the workers again.

Names: a manifest is a CSV with `path` (relative to the manifest's folder), `prompt` or
`prompt_id`, and an optional `sample` (the sample index, used like a seed; default 0). A folder
holds `{prompt}-{index}.mp4` (VBench's names) or `{prompt_id}.mp4`. Prompts match exactly after
Unicode NFC and trimming.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from .models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet
from .video.config import ImportedConfig, parse_config
from .video.probe import Limits, ProbeError, probe

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
_VBENCH_NAME = re.compile(r"(?P<prompt>.+)-(?P<index>[0-9]{1,6})")

Status = GenerationJob.Status


@dataclass(frozen=True)
class FileOutcome:
    """One file of an import: `status` is accepted, imported already, refused or unmatched."""

    path: str
    status: str
    reason: str = ""
    prompt: str = ""
    sample: int = 0


@dataclass(frozen=True)
class ImportReport:
    files: tuple[FileOutcome, ...]
    batch: GenerationBatch | None = None
    written: bool = False
    created_prompts: int = 0
    skipped_names: int = 0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def has_problems(self) -> bool:
        return any(f.status in ("refused", "unmatched") for f in self.files)


@dataclass
class _Entry:
    given: str
    path: Path | None = None
    prompt_text: str = ""
    prompt_id: str = ""
    sample: int = 0
    refusal: str = ""
    prompt: Prompt | None = None
    new_prompt: str = ""
    outcome: str = ""
    reason: str = ""
    frames: dict[str, Any] = field(default_factory=dict)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def import_limits() -> Limits:
    return Limits(
        max_seconds=settings.JUICE_IMPORT_MAX_SECONDS,
        max_pixels=settings.JUICE_IMPORT_MAX_PIXELS,
        max_bytes=settings.JUICE_IMPORT_MAX_BYTES,
    )


def import_videos(
    *,
    variant: ModelVariant,
    prompt_set: PromptSet,
    manifest: Path | None = None,
    folder: Path | None = None,
    create_prompts: bool = False,
    skip_bad: bool = False,
    created_by: Any = None,
) -> ImportReport:
    """Plan, check and (when nothing is wrong, or `skip_bad`) write an import; see the module."""
    if not isinstance(parse_config(variant.config), ImportedConfig):
        raise ValidationError(
            f"{variant} is not an imported variant: register one with "
            '{"kind": "imported"} to take in videos made elsewhere.'
        )
    if (manifest is None) == (folder is None):
        raise ValidationError("Give a manifest or a folder (one of them).")
    if manifest is not None:
        entries, skipped = _manifest_entries(manifest), 0
    else:
        assert folder is not None
        entries, skipped = _folder_entries(folder)
    if not entries:
        raise ValidationError("No video files to import.")
    _match_prompts(entries, prompt_set, create_prompts=create_prompts)
    batch = _import_batch(variant=variant, prompt_set=prompt_set)
    _mark_known(entries, variant=variant, batch=batch)
    _check_files([e for e in entries if not e.outcome], import_limits())
    files = tuple(
        FileOutcome(
            path=e.given,
            status=e.outcome,
            reason=e.reason,
            prompt=e.prompt.text if e.prompt else e.new_prompt or e.prompt_text or e.prompt_id,
            sample=e.sample,
        )
        for e in entries
    )
    report = ImportReport(files=files, batch=batch, skipped_names=skipped)
    if report.has_problems and not skip_bad:
        return report
    return _write(entries, report, variant=variant, prompt_set=prompt_set, created_by=created_by)


def _check_files(entries: list[_Entry], limits: Limits) -> None:
    """Decode every file once, in parallel (PyAV decodes without holding the GIL)."""

    def check(entry: _Entry) -> None:
        assert entry.path is not None
        try:
            probe(entry.path, limits)
        except ProbeError as exc:
            entry.outcome, entry.reason = "refused", str(exc)
        except OSError as exc:
            entry.outcome, entry.reason = "refused", f"cannot be read ({exc.strerror or exc})"
        else:
            entry.outcome = "accepted"

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        list(pool.map(check, entries))


def _manifest_entries(manifest: Path) -> list[_Entry]:
    try:
        text = manifest.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"Cannot read the manifest {manifest}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError("The manifest is not UTF-8 text.") from exc
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip() for c in reader.fieldnames or []}
    if "path" not in columns or not columns & {"prompt", "prompt_id"}:
        raise ValidationError(
            "The manifest needs a 'path' column and a 'prompt' or 'prompt_id' column "
            f"(it has: {', '.join(sorted(columns)) or 'none'})."
        )
    root = manifest.resolve().parent
    entries = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        entry = _Entry(
            given=row.get("path", ""),
            prompt_text=normalize(row.get("prompt", "")),
            prompt_id=row.get("prompt_id", ""),
        )
        sample = row.get("sample", "") or "0"
        if not re.fullmatch(r"[0-9]{1,6}", sample):
            entry.refusal = f"line {line}: sample must be a whole number from 0, not {sample!r}"
        else:
            entry.sample = int(sample)
        if not entry.given:
            entry.refusal = f"line {line}: no path"
        else:
            entry.path, refusal = _inside(root, root / entry.given, "the manifest's folder")
            entry.refusal = entry.refusal or refusal
        if not (entry.prompt_text or entry.prompt_id):
            entry.refusal = entry.refusal or f"line {line}: no prompt or prompt_id"
        entries.append(entry)
    return entries


def _folder_entries(folder: Path) -> tuple[list[_Entry], int]:
    if not folder.is_dir():
        raise ValidationError(f"No folder at {folder}.")
    root = folder.resolve()
    entries, skipped = [], 0
    for item in sorted(folder.iterdir()):
        if item.suffix.lower() not in VIDEO_SUFFIXES or item.is_dir():
            skipped += 1
            continue
        entry = _Entry(given=item.name)
        entry.path, entry.refusal = _inside(root, item, "the folder")
        stem = normalize(item.stem)
        named = _VBENCH_NAME.fullmatch(stem)
        # `{prompt}-{index}` (VBench) or `{prompt_id}`; which one is settled against the set.
        entry.prompt_text = normalize(named["prompt"]) if named else stem
        entry.sample = int(named["index"]) if named else 0
        entry.prompt_id = stem
        entries.append(entry)
    return entries, skipped


def _inside(root: Path, candidate: Path, where: str) -> tuple[Path | None, str]:
    """The file's real path, unless it leaves `root` (`..`, an absolute path, a symlink)."""
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, RuntimeError) as exc:
        return None, f"cannot be read ({exc})"
    if not real.is_relative_to(root):
        return None, f"outside {where} (by '..', an absolute path or a symlink): not read"
    if not real.is_file():
        return None, "not a file"
    return real, ""


def _match_prompts(entries: list[_Entry], prompt_set: PromptSet, *, create_prompts: bool) -> None:
    by_text: dict[str, Prompt] = {}
    by_id: dict[str, Prompt] = {}
    for prompt in prompt_set.prompts.all():
        by_text.setdefault(normalize(prompt.text), prompt)
        by_id[prompt.external_id] = prompt
    for entry in entries:
        if entry.refusal:
            entry.outcome, entry.reason = "refused", entry.refusal
            continue
        if entry.prompt_text and entry.prompt_text in by_text:
            entry.prompt = by_text[entry.prompt_text]
        elif entry.prompt_id and entry.prompt_id in by_id:
            entry.prompt = by_id[entry.prompt_id]
        elif create_prompts and entry.prompt_text:
            entry.new_prompt = entry.prompt_text
        else:
            wanted = entry.prompt_text or f"id {entry.prompt_id}"
            entry.outcome = "unmatched"
            entry.reason = f"no prompt of '{prompt_set.slug}' reads {wanted!r}"
    seen: dict[tuple[str, int], str] = {}
    for entry in entries:
        if entry.outcome:
            continue
        key = (entry.prompt.text if entry.prompt else entry.new_prompt, entry.sample)
        if key in seen:
            entry.outcome = "refused"
            entry.reason = f"same prompt and sample as {seen[key]}"
        else:
            seen[key] = entry.given


def _import_batch(*, variant: ModelVariant, prompt_set: PromptSet) -> GenerationBatch | None:
    return GenerationBatch.objects.filter(
        kind=GenerationBatch.Kind.IMPORT, prompt_set=prompt_set, variants=variant
    ).first()


def _mark_known(
    entries: list[_Entry], *, variant: ModelVariant, batch: GenerationBatch | None
) -> None:
    if batch is None:
        return
    known = {
        (prompt_id, seed): status
        for prompt_id, seed, status in batch.jobs.filter(variant=variant).values_list(
            "prompt_id", "seed", "status"
        )
    }
    for entry in entries:
        if entry.outcome or entry.prompt is None:
            continue
        status = known.get((entry.prompt.pk, entry.sample))
        if status == Status.DONE:
            entry.outcome, entry.reason = "imported already", ""
        elif status is not None:
            entry.outcome, entry.reason = "imported already", "still being transcoded: sent again"


@transaction.atomic
def _write(
    entries: list[_Entry],
    report: ImportReport,
    *,
    variant: ModelVariant,
    prompt_set: PromptSet,
    created_by: Any,
) -> ImportReport:
    from .services import enqueue_jobs

    created = _create_prompts(
        prompt_set, {e.new_prompt for e in entries if e.outcome == "accepted"}
    )
    batch = report.batch
    if batch is None:
        batch = GenerationBatch.objects.create(
            name=f"Import: {variant.name} · {prompt_set.name}"[:200],
            kind=GenerationBatch.Kind.IMPORT,
            prompt_set=prompt_set,
            seeds=1,
            created_by=created_by,
        )
        batch.variants.set([variant])
    accepted = [e for e in entries if e.outcome == "accepted"]
    GenerationJob.objects.bulk_create(
        (
            GenerationJob(
                batch=batch,
                variant=variant,
                prompt=e.prompt or created[e.new_prompt],
                seed=e.sample,
                source=str(e.path),
            )
            for e in accepted
        ),
        ignore_conflicts=True,
    )
    unfinished = batch.jobs.filter(status__in=(Status.QUEUED, Status.RUNNING))
    if unfinished.exists():
        GenerationBatch.objects.filter(pk=batch.pk).update(
            status=GenerationBatch.Status.RUNNING, finished_at=None
        )
        unfinished.filter(status=Status.RUNNING).update(status=Status.QUEUED, worker="")
        enqueue_jobs(batch=batch)
    return ImportReport(
        files=report.files,
        batch=batch,
        written=True,
        created_prompts=len(created),
        skipped_names=report.skipped_names,
    )


def _create_prompts(prompt_set: PromptSet, texts: Iterable[str]) -> dict[str, Prompt]:
    texts = sorted(t for t in texts if t)
    if not texts:
        return {}
    taken = set(prompt_set.prompts.values_list("external_id", flat=True))
    number = prompt_set.prompts.count()
    made: dict[str, Prompt] = {}
    for text in texts:
        number += 1
        while str(number) in taken:
            number += 1
        made[text] = Prompt.objects.create(
            prompt_set=prompt_set, external_id=str(number), text=text
        )
    return made


# Staff uploads ----------------------------------------------------------------------------

MANIFEST_NAME = "manifest.csv"
# Beside the unpacked files (`<upload>/files/`): what `release_uploads` may delete.
UPLOAD_MARKER = "juice-upload"


def import_upload(
    *,
    variant: ModelVariant,
    prompt_set: PromptSet,
    files: Sequence[UploadedFile[Any]],
    create_prompts: bool = False,
    skip_bad: bool = False,
    created_by: Any = None,
) -> ImportReport:
    """A zip (a folder of videos, or a manifest.csv with its files) or a manifest with its
    files, uploaded by staff: unpacked safely under JUICE_IMPORT_DIR, then imported as above.
    The unpacked files stay there for the transcoding workers unless nothing was imported;
    `release_uploads` deletes them once every file is transcoded."""
    total = sum(f.size or 0 for f in files)
    limit = settings.JUICE_IMPORT_UPLOAD_MAX_MB * 1024 * 1024
    if total > limit:
        raise ValidationError(
            f"The upload is {total / 2**20:.0f} MB; the limit is "
            f"{settings.JUICE_IMPORT_UPLOAD_MAX_MB} MB (JUICE_IMPORT_UPLOAD_MAX_MB)."
        )
    if not files:
        raise ValidationError("Choose a zip, or a manifest.csv with its video files.")
    target = Path(settings.JUICE_IMPORT_DIR) / uuid.uuid4().hex
    unpacked = target / "files"
    unpacked.mkdir(parents=True)
    (target / UPLOAD_MARKER).touch()
    try:
        zips = [f for f in files if (f.name or "").lower().endswith(".zip")]
        if zips:
            if len(files) != 1:
                raise ValidationError("Upload one zip on its own, or a manifest with its files.")
            _unzip(zips[0], unpacked, limit=limit)
        else:
            for upload in files:
                name = Path(upload.name or "").name
                if not name or name.startswith("."):
                    raise ValidationError(f"Unusable file name {upload.name!r}.")
                with (unpacked / name).open("wb") as handle:
                    for chunk in upload.chunks():
                        handle.write(chunk)
        root = _single_folder(unpacked)
        manifest = root / MANIFEST_NAME
        report = import_videos(
            variant=variant,
            prompt_set=prompt_set,
            manifest=manifest if manifest.is_file() else None,
            folder=None if manifest.is_file() else root,
            create_prompts=create_prompts,
            skip_bad=skip_bad,
            created_by=created_by,
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    if not report.written:
        shutil.rmtree(target, ignore_errors=True)
    return report


def release_uploads(*, sources: Iterable[str]) -> list[Path]:
    """Delete the staff-upload folders (under JUICE_IMPORT_DIR) that these job sources came from
    once every job importing from a folder is done; a folder with a failed, cancelled or waiting
    job stays, so that retrying or resuming the batch still finds its files. Only folders that
    `import_upload` made (they hold its marker file) are ever deleted: files an admin imports
    from a folder of their own are theirs. The deleted folders are returned."""
    root = Path(settings.JUICE_IMPORT_DIR).resolve()
    folders = set()
    for source in sources:
        path = Path(source).resolve()
        if path.is_relative_to(root) and path != root:
            folders.add(root / path.relative_to(root).parts[0])
    released = []
    for folder in sorted(folders):
        pending = GenerationJob.objects.filter(source__startswith=f"{folder}{os.sep}").exclude(
            status=GenerationJob.Status.DONE
        )
        if (folder / UPLOAD_MARKER).is_file() and not pending.exists():
            shutil.rmtree(folder, ignore_errors=True)
            released.append(folder)
    return released


def _unzip(upload: UploadedFile[Any], target: Path, *, limit: int) -> None:
    """Extract member by member: no absolute names, no `..`, no links, and no zip bomb."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile as exc:
        raise ValidationError("The upload is not a readable zip file.") from exc
    with archive:
        members = archive.infolist()
        if len(members) > 20_000:
            raise ValidationError("The zip holds over 20,000 entries.")
        if sum(m.file_size for m in members) > limit:
            raise ValidationError(
                f"The zip unpacks to over {settings.JUICE_IMPORT_UPLOAD_MAX_MB} MB."
            )
        for member in members:
            name = member.filename
            parts = Path(name).parts
            is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if name.startswith(("/", "\\")) or ".." in parts or is_link or ":" in name:
                raise ValidationError(f"The zip entry {name!r} would land outside its folder.")
            if member.is_dir() or name.startswith("__MACOSX/") or Path(name).name.startswith("."):
                continue
            destination = target.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as handle:
                shutil.copyfileobj(source, handle)


def _single_folder(root: Path) -> Path:
    """A zip of one folder imports that folder."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return root
