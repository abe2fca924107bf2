from django.core.management.base import CommandError

from evalsite.commands import DatabaseCommand
from generation.models import GenerationBatch


class Command(DatabaseCommand):
    help = "Score a batch's videos with the procedural-domain classifier (faithfulness, FVD-style)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("batch_id", type=int)

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        from generation.scoring import score_batch

        if not GenerationBatch.objects.filter(pk=options["batch_id"]).exists():
            raise CommandError(f"No generation batch with id {options['batch_id']}.")
        for row in score_batch(batch_id=options["batch_id"]):
            faith = "n/a" if row.faithfulness is None else f"{row.faithfulness:.3f}"
            fd = "n/a" if row.frechet is None else f"{row.frechet:.2f}"
            self.stdout.write(f"{row.variant}: {row.videos} videos, faithfulness {faith}, FD {fd}")
