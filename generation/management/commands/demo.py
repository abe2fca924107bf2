import signal
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from evalsite import demo
from generation import selectors


class Command(BaseCommand):
    help = "Build a demo study with real generated videos, then serve the site until Ctrl-C."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Set up, then exit.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        # Checked before anything starts: a busy port must not leave a worker behind.
        if not options["no_serve"] and (problem := demo.port_problem(options["addrport"])):
            raise CommandError(problem)
        call_command("migrate", verbosity=0)
        demo.ensure_users()
        batch, variants = demo.ensure_batch()
        worker = demo.start_worker()
        # A kill or a closed terminal ends the demo through the `finally` below, as Ctrl-C does.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _exit_on_signal)
        try:
            counts = demo.wait_for_batch(batch, timeout_s=900, on_progress=self._bar, worker=worker)
            sys.stdout.write("\n")
            for row in selectors.job_failures(batch=batch):
                self.stdout.write(f"Job {row['job']} ({row['variant']}) failed: {row['error']}")
            study, moved = demo.ensure_study(batch, variants)
            if moved:
                self.stdout.write(
                    f"The earlier demo study compared earlier versions of the demo's variants: "
                    f"it is kept, with its judgments, as '{moved}'."
                )
            self.stdout.write(
                f"{counts['done']} videos ready, {counts['failed']} failed; "
                f"study '{study.slug}' has {study.comparisons.count()} comparisons.\n"
                f"Rater login: {demo.RATER[0]} / {demo.RATER[1]}\n"
                f"Admin login: {demo.ADMIN[0]} / {demo.ADMIN[1]}  (staff home: /staff/)"
            )
            if not options["no_serve"]:
                self.stdout.write(f"Serving http://{options['addrport']}/ — Ctrl-C stops it.")
                call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            demo.stop_worker(worker)

    def _bar(self, counts: dict[str, int]) -> None:
        total = max(1, counts["total"])
        done = counts["done"] + counts["failed"]
        filled = int(30 * done / total)
        sys.stdout.write(
            f"\rGenerating videos [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
        )
        sys.stdout.flush()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
