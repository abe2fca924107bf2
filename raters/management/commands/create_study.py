"""`manage.py create_study --slug S --variants a,b,c --baseline a --raters-per-pair 5`."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.urls import reverse

from evalsite.commands import DatabaseCommand
from raters import studies


class Command(DatabaseCommand):
    help = (
        "Build and publish a study, as the staff builder does: comparisons from the source "
        "batches (default: every batch with videos of the variants) and hidden gold checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", default="", help="Default: the slug.")
        parser.add_argument("--variants", required=True, help="Comma-separated variant slugs.")
        parser.add_argument("--baseline", help="Each variant against this one (ablation style).")
        parser.add_argument("--pairs", help="Explicit pairs instead: a:b,a:c (A is the design).")
        parser.add_argument("--sources", help="Comma-separated source batch ids.")
        parser.add_argument("--raters-per-pair", type=int, default=5)
        parser.add_argument("--mode", choices=["fixed", "adaptive"], default="fixed")
        parser.add_argument("--no-ties", action="store_true", help="Force a choice (the paper).")
        parser.add_argument("--gold", type=int, default=8, help="Gold comparisons to build.")
        parser.add_argument("--gold-rate", type=float, default=0.1)
        parser.add_argument("--mirror-rate", type=float, default=0.05)
        parser.add_argument("--tasks-per-rater", type=int, default=0)
        parser.add_argument("--min-watch-ms", type=int, default=2000)
        parser.add_argument("--no-quiz", action="store_true")
        parser.add_argument("--id-param", default="PROLIFIC_PID", help="Start-link parameter.")
        parser.add_argument("--completion-url", default="", help="{code} becomes the code.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            design = studies.design_from_names(
                slug=opts["slug"],
                name=opts["name"],
                variant_slugs=_split(opts["variants"]),
                baseline=opts["baseline"] or "",
                pairs=_split(opts["pairs"] or ""),
                source_ids=_split(opts["sources"] or ""),
                raters_per_pair=opts["raters_per_pair"],
                mode=opts["mode"],
                allow_ties=not opts["no_ties"],
                gold_count=opts["gold"],
                gold_rate=opts["gold_rate"] if opts["gold"] else 0.0,
                mirror_rate=opts["mirror_rate"],
                require_qualification=not opts["no_quiz"],
                min_watch_ms=opts["min_watch_ms"],
                tasks_per_rater=opts["tasks_per_rater"],
                external_id_param=opts["id_param"],
                completion_url=opts["completion_url"],
            )
            plan = studies.plan_study(design=design)
            study = studies.publish_study(design=design)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for pair in plan.pairs:
            self.stdout.write(f"  {pair.variant_a} vs {pair.variant_b}: {pair.comparisons}")
        self.stdout.write(
            f"Study '{study.slug}': {plan.comparisons} comparisons, "
            f"{study.comparisons.filter(kind='gold').count()} gold; {plan.judgments} judgments "
            f"needed, about {plan.rater_hours:.1f} rater-hours.\n"
            f"Crowd start link: {reverse('raters:start', args=[study.slug])}"
            f"?{study.external_id_param}=WORKER_ID\n"
            f"Rater link: {reverse('raters:rate', args=[study.slug])}\n"
            f"Staff page: {reverse('studies:detail', args=[study.slug])}"
        )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
