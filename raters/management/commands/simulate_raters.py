"""Dry-run a study with simulated raters driving the site over HTTP."""

from django.core.management.base import CommandError

from evalsite.commands import DatabaseCommand
from raters import simulation


class Command(DatabaseCommand):
    help = (
        "Create simulated raters and let them rate STUDY on a running site over HTTP. The site "
        "must use this database and DJANGO_SECRET_KEY: the raters are created here and resumed "
        "by signed start links."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--study", required=True, help="study slug")
        parser.add_argument("--raters", type=int, default=50)
        parser.add_argument("--concurrency", type=int, default=20)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000/")
        parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
        parser.add_argument("--careless-share", type=float, default=0.1)
        parser.add_argument("--noise", type=float, default=0.15)
        parser.add_argument("--position-bias", type=float, default=0.05)
        parser.add_argument("--wait-scale", type=float, default=1.0, help="0 = no waiting")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        behaviour = simulation.Behaviour(
            noise=options["noise"],
            position_bias=options["position_bias"],
            wait_scale=options["wait_scale"],
        )
        try:
            report = simulation.dry_run(
                study_slug=options["study"],
                raters=options["raters"],
                base_url=options["base_url"],
                concurrency=options["concurrency"],
                minutes=options["minutes"],
                careless_share=options["careless_share"],
                behaviour=behaviour,
                seed=options["seed"],
            )
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.summary())
