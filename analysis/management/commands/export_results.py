from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis import export, queries
from raters.models import Study


class Command(BaseCommand):
    help = "Export one row per judgment (csv or jsonl) and a per-variant-pair summary beside it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--format", default="csv", choices=export.FORMATS)
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--study", help="Study slug; all studies when omitted.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        study = None
        if options["study"]:
            study = Study.objects.filter(slug=options["study"]).first()
            if study is None:
                raise CommandError(f"No study with slug {options['study']!r}.")
        output: Path = options["output"]
        if not output.parent.is_dir():
            raise CommandError(f"Folder {output.parent} does not exist.")
        frame = export.write_judgments(
            queries.judgment_rows(study=study),
            path=output,
            fmt=options["format"],
            columns=queries.JUDGMENT_COLUMNS,
        )
        summary = export.write_summary(frame, path=export.summary_path(output))
        self.stdout.write(f"Wrote {len(frame)} judgments to {output}")
        self.stdout.write(summary.to_string(index=False) if len(summary) else "No judgments yet.")
