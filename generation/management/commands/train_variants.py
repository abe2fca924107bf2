from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Train the autoencoder, T2I, video (one per ablation row), interpolation and classifier "
        "models on the procedural data; resumable, writes checkpoints + JSON cards."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default=str(settings.JUICE_CHECKPOINT_DIR))
        parser.add_argument("--state", default=str(Path(settings.BASE_DIR) / "var" / "training"))
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
        # One thread: on a shared 2-core machine a second one mostly spins at barriers (3× slower).
        parser.add_argument("--threads", type=int, default=1)
        parser.add_argument("--only", default="", help="Comma-separated stage names to train.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        from generation.video.training import train_variants

        summary = train_variants(
            seed=options["seed"],
            out_dir=Path(options["out"]),
            state_dir=Path(options["state"]),
            device=options["device"],
            threads=options["threads"],
            only=frozenset(filter(None, options["only"].split(","))) or None,
            log=self.stdout.write,
        )
        self.stdout.write(f"Done in {summary['wall_seconds']} s on {summary['device']}.")
