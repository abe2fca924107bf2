"""Print signed start links for a study: one per worker id (docs/production.md)."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from evalsite.commands import DatabaseCommand
from raters import services
from raters.models import Study


class Command(DatabaseCommand):
    help = (
        "Print a signed start link per worker id (from --ids FILE, one a line, or arguments): "
        "a signed link resumes its worker in this study without the resume code."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="study slug")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000/")
        parser.add_argument("--ids", help="file of worker ids, one a line")
        parser.add_argument("worker_ids", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug '{options['study']}'.")
        ids = list(options["worker_ids"])
        if options["ids"]:
            with open(options["ids"], encoding="utf-8") as handle:
                ids += [line.strip() for line in handle if line.strip()]
        if not ids:
            raise CommandError("Give worker ids as arguments or with --ids FILE.")
        for external_id in ids:
            self.stdout.write(
                services.signed_start_url(
                    study=study, external_id=external_id, base_url=options["base_url"]
                )
            )
