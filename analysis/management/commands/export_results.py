from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from analysis import export, present, queries
from evalsite.commands import DatabaseCommand
from raters.models import Study


class Command(DatabaseCommand):
    help = (
        "Export one row per judgment of real comparisons (csv, jsonl, parquet, or FastChat "
        "arena JSON for one question) and a per-pair summary beside it (<output>.summary.csv); "
        "with --summary that summary is the ablation table with intervals, agreement and "
        "flagged-rater sensitivity, and <output>.ratings.csv holds the Bradley–Terry strengths."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--format",
            default="csv",
            help=" | ".join((*export.FORMATS, export.REPORT_FORMAT))
            + " (html: one self-contained report of the study)",
        )
        parser.add_argument(
            "--output",
            type=Path,
            help="File to write; var/exports/<study>/judgments.<ext> when omitted with --study.",
        )
        parser.add_argument("--study", help="Study slug; all studies when omitted.")
        parser.add_argument(
            "--question",
            default="quality",
            help="arena-json: the answer that decides each battle (quality | faithfulness).",
        )
        parser.add_argument("--summary", action="store_true")
        parser.add_argument("--include-qc", action="store_true", help="Add gold and mirror rows.")
        parser.add_argument("--include-rater-ids", action="store_true")
        parser.add_argument("--include-simulated", action="store_true")
        parser.add_argument(
            "--raw", action="store_true", help="CSV: keep cells starting with = + - @ as they are."
        )
        parser.add_argument("--rounds", type=int, default=1000, help="Bootstrap rounds.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        study = Study.objects.filter(slug=options["study"]).first() if options["study"] else None
        if options["study"] and study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        try:
            export.check_format(options["format"], report=True)
            export.check_question(options["question"])
        except export.ExportError as error:
            raise CommandError(str(error)) from error
        output: Path | None = options["output"]
        if output is None:
            if study is None:
                raise CommandError("Give --output, or --study to write under var/exports/.")
            output = export.default_output(
                exports=settings.VAR_DIR / "exports", study=study.slug, fmt=options["format"]
            )
            output.parent.mkdir(parents=True, exist_ok=True)
        if not output.parent.is_dir():
            raise CommandError(f"Folder {output.parent} does not exist.")
        if options["format"] == export.REPORT_FORMAT:
            if study is None:
                raise CommandError("An html report covers one study: give --study.")
            html = queries.study_report(
                study=study,
                include_simulated=options["include_simulated"],
                rounds=options["rounds"],
            )
            export.write_text(html, path=output)
            self.stdout.write(f"Wrote the report of {study.slug} to {output}")
            return
        scope = dict(study=study, include_simulated=options["include_simulated"])
        select = dict(
            include_rater_ids=options["include_rater_ids"], include_qc=options["include_qc"]
        )
        if options["format"] == "csv" and queries.formats_in_database():
            copied = queries.export_csv_copy(**scope, **select, raw=options["raw"])
            n = export.write_csv_blocks(copied.blocks, columns=copied.columns, path=output)
        else:
            query = queries.export_query(**scope, **select)
            n = export.write_judgments(
                query.rows,
                columns=query.columns,
                path=output,
                fmt=options["format"],
                total=query.count,
                question=options["question"],
                raw=options["raw"],
            )
        target = export.summary_path(output)
        if options["summary"]:
            result = queries.ablation_summary(**scope, rounds=options["rounds"])
            export.write_table(result.table, path=target, raw=options["raw"])
            ratings = export.ratings_path(output)
            export.write_table(result.ratings, path=ratings, raw=options["raw"])
            self.stdout.write(f"Wrote {n} judgments to {output}, summary to {target}, {ratings}")
            self.stdout.write(present.terminal_report(result.table, result.ratings))
            return
        summary = export.write_pair_summary(queries.pair_counts(**scope), path=target)
        self.stdout.write(f"Wrote {n} judgments to {output}, summary to {target}")
        self.stdout.write(summary.to_string(index=False) if len(summary) else "No judgments yet.")
