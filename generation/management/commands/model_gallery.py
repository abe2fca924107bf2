from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Write one frame strip per trained built-in variant (same prompt, same seed) to a PNG."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--output", default="docs/gallery.png")
        parser.add_argument("--prompt", default="a red circle moves right on a blue background")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--steps", type=int, default=10, help="Sampling steps per video.")
        parser.add_argument("--scale", type=int, default=2, help="Pixels per model pixel.")
        parser.add_argument("--checkpoints", default=str(settings.JUICE_CHECKPOINT_DIR))

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        from generation.video.gallery import write_gallery

        if not 1 <= options["steps"] <= 1000 or not 1 <= options["scale"] <= 16:
            raise CommandError("--steps must be 1-1000 and --scale 1-16.")
        try:
            rows = write_gallery(
                Path(options["output"]),
                prompt=options["prompt"],
                seed=options["seed"],
                root=Path(options["checkpoints"]),
                steps=options["steps"],
                scale=options["scale"],
            )
        except ValueError as exc:  # ConfigError included: a checkpoint that cannot load
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Wrote {len(rows)} strips to {options['output']}.")
