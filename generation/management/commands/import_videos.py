"""`manage.py import_videos --variant NAME --prompt-set SLUG (--manifest F.csv | --folder DIR)`."""

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from evalsite.commands import DatabaseCommand
from generation import imports, selectors


class Command(DatabaseCommand):
    help = (
        "Import videos made elsewhere as an imported variant's videos: a CSV manifest (path, "
        "prompt or prompt_id, optional sample) or a folder of {prompt}-{index}.mp4 / "
        "{prompt_id}.mp4 files. Every file is decoded and checked first; unless --skip-bad, "
        "one refused or unmatched file means nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--variant", required=True, help='Slug of a {"kind": "imported"} variant.'
        )
        parser.add_argument("--prompt-set", required=True, help="Slug of the prompt set.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--manifest", type=Path)
        source.add_argument("--folder", type=Path)
        parser.add_argument(
            "--create-prompts", action="store_true", help="Add unmatched prompts to the set."
        )
        parser.add_argument(
            "--skip-bad", action="store_true", help="Import the accepted files anyway."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            (variant,) = selectors.latest_variants(slugs=[opts["variant"]])
            prompt_set = selectors.prompt_set_by_slug(slug=opts["prompt_set"])
            report = imports.import_videos(
                variant=variant,
                prompt_set=prompt_set,
                manifest=opts["manifest"],
                folder=opts["folder"],
                create_prompts=opts["create_prompts"],
                skip_bad=opts["skip_bad"],
            )
        except (LookupError, ValidationError) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        for file in report.files:
            detail = f" ({file.reason})" if file.reason else ""
            where = f" -> {file.prompt!r} sample {file.sample}" if file.prompt else ""
            self.stdout.write(f"{file.status:>17}  {file.path}{where}{detail}")
        if report.skipped_names:
            self.stdout.write(f"Skipped {report.skipped_names} entries without a video suffix.")
        summary = ", ".join(
            f"{report.count(s)} {s}"
            for s in ("accepted", "imported already", "refused", "unmatched")
            if report.count(s)
        )
        if not report.written:
            raise CommandError(
                f"Nothing imported: {summary}. Fix or remove those files, pass --create-prompts "
                "for new prompts, or --skip-bad to import the accepted ones."
            )
        assert report.batch is not None
        self.stdout.write(
            f"Import batch {report.batch.pk} '{report.batch.name}': {summary}"
            + (f", {report.created_prompts} prompts added" if report.created_prompts else "")
            + ". The workers on the default queue transcode them; the batch page shows progress."
        )
