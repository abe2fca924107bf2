import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from evalsite import demo


class Command(BaseCommand):
    help = "Build a demo study with real generated videos, then serve the site until Ctrl-C."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Set up, then exit.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        call_command("migrate", verbosity=0)
        demo.ensure_users()
        batch, variants = demo.ensure_batch()
        worker = demo.start_worker()
        try:
            counts = demo.wait_for_batch(batch, timeout_s=900, on_progress=self._bar, worker=worker)
            sys.stdout.write("\n")
            study = demo.ensure_study(batch, variants)
            self.stdout.write(
                f"{counts['done']} videos ready, {counts['failed']} failed; "
                f"study '{study.slug}' has {study.comparisons.count()} comparisons.\n"
                f"Rater login: {demo.RATER[0]} / {demo.RATER[1]}\n"
                f"Admin login: {demo.ADMIN[0]} / {demo.ADMIN[1]}  (/admin/)"
            )
            if not options["no_serve"]:
                self.stdout.write(f"Serving http://{options['addrport']}/ — Ctrl-C stops it.")
                call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    def _bar(self, counts: dict[str, int]) -> None:
        total = max(1, counts["total"])
        done = counts["done"] + counts["failed"]
        filled = int(30 * done / total)
        sys.stdout.write(
            f"\rGenerating videos [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
        )
        sys.stdout.flush()
