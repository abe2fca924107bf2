"""`manage.py launch_batch --variants a,b --prompts FILE --seeds 3 [--wait]`."""

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from evalsite.commands import DatabaseCommand
from generation import selectors, services


class Command(DatabaseCommand):
    help = "Create a batch from variant slugs (newest version) and a .txt/.csv prompt file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--variants", required=True, help="Comma-separated variant slugs.")
        parser.add_argument("--prompts", required=True, type=Path, help=".txt or .csv file.")
        parser.add_argument("--seeds", type=int, default=1)
        parser.add_argument("--name", default="", help="Batch name (default: the file name).")
        parser.add_argument("--chunk-size", type=int, default=None)
        parser.add_argument("--sample-batch", type=int, default=None)
        parser.add_argument("--wait", action="store_true", help="Show a progress bar until done.")
        parser.add_argument("--timeout", type=float, default=None, help="Seconds to --wait.")

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["prompts"]
        if not path.is_file():
            raise CommandError(f"No such prompt file: {path}")
        try:
            variants = selectors.latest_variants(slugs=opts["variants"].split(","))
            batch = services.create_batch_from_upload(
                name=opts["name"] or path.stem,
                variants=variants,
                filename=path.name,
                data=path.read_bytes(),
                seeds=opts["seeds"],
                chunk_size=opts["chunk_size"],
                sample_batch=opts["sample_batch"],
            )
        except (LookupError, ValidationError) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        total = selectors.batch_progress(batch=batch)["total"]
        self.stdout.write(f"Batch {batch.pk} '{batch.name}': {total} jobs queued.")
        if opts["wait"]:
            with tqdm(total=total, unit="video", file=self.stderr._out) as bar:

                def show(counts: dict[str, int]) -> None:
                    bar.n = counts["done"] + counts["failed"] + counts["cancelled"]
                    bar.set_postfix(failed=counts["failed"], running=counts["running"])

                counts = selectors.follow_batch(
                    batch=batch, on_progress=show, timeout_s=opts["timeout"]
                )
            self.stdout.write(f"Finished: {counts['done']} done, {counts['failed']} failed.")
            for row in selectors.job_failures(batch=batch):
                if row["status"] == "failed":
                    self.stdout.write(
                        f"  job {row['job']} ({row['variant']}, seed {row['seed']}, "
                        f"prompt {row['prompt']!r}) failed after {row['attempts']} "
                        f"attempt(s): {row['error']}"
                    )
