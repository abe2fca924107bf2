from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis import export, queries
from raters.models import Study


class Command(BaseCommand):
    help = (
        "Export one row per judgment (csv, jsonl, parquet or FastChat arena JSON) and a "
        "per-variant-pair summary beside it (<stem>.summary.csv); with --summary that summary "
        "is the ablation table with bootstrap CIs, agreement and flagged-rater sensitivity."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--format", default="csv", help=" | ".join(export.FORMATS))
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--study", help="Study slug; all studies when omitted.")
        parser.add_argument("--summary", action="store_true")
        parser.add_argument("--include-rater-ids", action="store_true")
        parser.add_argument("--include-simulated", action="store_true")
        parser.add_argument("--rounds", type=int, default=1000, help="Bootstrap rounds.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        output: Path = options["output"]
        study = Study.objects.filter(slug=options["study"]).first() if options["study"] else None
        if options["study"] and study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        if not output.parent.is_dir():
            raise CommandError(f"Folder {output.parent} does not exist.")
        try:
            export.check_format(options["format"])
        except export.ExportError as error:
            raise CommandError(str(error)) from error
        scope = dict(study=study, include_simulated=options["include_simulated"])
        query = queries.export_query(**scope, include_rater_ids=options["include_rater_ids"])
        n = export.write_judgments(
            query.rows, columns=query.columns, path=output, fmt=options["format"], total=query.count
        )
        if options["summary"]:
            table = queries.ablation_summary(**scope, rounds=options["rounds"])
            summary = export.write_table(table, path=export.summary_path(output))
        else:
            summary = export.write_pair_summary(
                queries.pair_counts(**scope), path=export.summary_path(output)
            )
        self.stdout.write(
            f"Wrote {n} judgments to {output}, summary to {export.summary_path(output)}"
        )
        self.stdout.write(summary.to_string(index=False) if len(summary) else "No judgments yet.")
