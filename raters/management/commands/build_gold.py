from typing import Any

from django.core.management.base import CommandParser

from evalsite.commands import DatabaseCommand
from raters import services
from raters.models import Study


class Command(DatabaseCommand):
    help = "Build hidden gold comparisons (degraded copies of real videos) for a study."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="Study slug")
        parser.add_argument("--count", type=int, default=8)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.get(slug=options["study"])
        made = services.build_gold_comparisons(
            study=study, count=int(options["count"]), seed=int(options["seed"])
        )
        self.stdout.write(f"{made} gold comparisons built for {study.slug}.")
