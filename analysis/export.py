"""Writing judgment exports (csv, jsonl, parquet, FastChat arena JSON) row by row.

Rows arrive as tuples from `queries.export_query` and leave in batches, so memory stays flat
however many judgments a study has. Files are written beside the target and renamed into place.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import pandas as pd

from raters.spreadsheets import neutralise_formula, restore_formula

from .frames import QUESTIONS, REASON_CODES
from .stats import pair_counts_summary

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet", "arena-json")
ARENA_QUESTIONS: tuple[str, ...] = QUESTIONS
PARQUET_BATCH = 50_000
_INTEGERS = {
    "judgment_id", "comparison_id", "pair_id", "prompt_id", "video_a_id", "video_b_id",
    "seed_a", "seed_b", "time_spent_ms", "watch_ms", "replays", "seeks",
}  # fmt: skip
_BOOLEANS = {"is_flagged", "rater_is_flagged", "is_simulated"}
# Only gold (mirrored) judgments have these; elsewhere they are empty. In CSV they are written as
# 1 / 0 / empty so that pandas reads them as float64 in every study, QC or not.
_NULLABLE_BOOLEANS = {"gold_correct", "mirror_consistent"}
_TIMES = {"assigned_at", "judged_at"}


def reason_column(question: str, code: str) -> str:
    """The boolean column that says whether a judgment cited `code` for `question`."""
    return f"{question}_reason_{code}"


class ExportError(ValueError):
    """Bad export arguments, with a message for the analyst."""


REPORT_FORMAT = "html"  # one self-contained report per study, not a row per judgment


def check_format(fmt: str, *, report: bool = False) -> None:
    formats = (*FORMATS, REPORT_FORMAT) if report else FORMATS
    if fmt not in formats:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(formats)}.")


def check_question(question: str) -> None:
    if question not in ARENA_QUESTIONS:
        raise ExportError(f"Unknown question {question!r}; choose {' or '.join(ARENA_QUESTIONS)}.")


def write_judgments(
    rows: Iterable[tuple[Any, ...]],
    *,
    columns: tuple[str, ...],
    path: Path,
    fmt: str,
    total: int | None = None,
    progress: bool | None = None,
    question: str = "quality",
    raw: bool = False,
) -> int:
    """Stream rows into `path` in format `fmt`; returns the number of rows written.

    `question` picks the answer that `arena-json` battles are decided by; `raw` leaves CSV cells
    that a spreadsheet would run as formulas as they are. A progress bar goes to stderr when it
    is a terminal (or when `progress` is True).
    """
    check_format(fmt)
    check_question(question)
    show = sys.stderr.isatty() if progress is None else progress
    partial = path.with_name(f".{path.name}.partial")
    counted = _Counted(rows)
    try:
        with _progress(counted, total=total, show=show) as tracked:
            if fmt == "parquet":
                _write_parquet(tracked, columns=columns, path=partial)
            else:
                with partial.open("w", newline="", encoding="utf-8") as out:
                    if fmt == "csv":
                        _write_csv(tracked, columns=columns, out=out, raw=raw)
                    elif fmt == "jsonl":
                        _write_jsonl(tracked, columns=columns, out=out)
                    else:
                        _write_arena(tracked, columns=columns, out=out, question=question)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written file left behind
        raise
    os.replace(partial, path)
    return counted.n


def write_text(text: str, *, path: Path) -> None:
    """A whole file at once, written beside the target and renamed into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_csv_blocks(blocks: Iterable[bytes], *, columns: tuple[str, ...], path: Path) -> int:
    """A CSV that the database formatted (`queries.export_csv_copy`): header, then its bytes.

    Returns the number of rows when the blocks count them (`rows`), else 0."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            out.write((",".join(columns) + "\n").encode())
            for block in blocks:
                out.write(block)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return int(getattr(blocks, "rows", 0))


def summary_path(path: Path) -> Path:
    """`judgments.csv` → `judgments.csv.summary.csv`: one summary per output, never shared."""
    return path.with_name(f"{path.name}.summary.csv")


_SUFFIXES = {
    "csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "arena-json": ".json", "html": ".html",
}  # fmt: skip


def default_output(*, exports: Path, study: str, fmt: str) -> Path:
    """Where an export goes when no --output is given: <exports>/<study>/judgments.<ext>
    (report.html for the report)."""
    name = "report" if fmt == REPORT_FORMAT else "judgments"
    return exports / study / f"{name}{_SUFFIXES[fmt]}"


def latest_export(*, exports: Path, study: str | None = None) -> Path | None:
    """The newest judgments file (csv, jsonl or parquet) under <exports>/[<study>/]."""
    folder = exports / (study or "")
    if not folder.is_dir():
        return None
    found = [
        path
        for suffix in (".csv", ".jsonl", ".parquet")
        for path in folder.rglob(f"*{suffix}")
        if not path.name.endswith((".summary.csv", ".ratings.csv")) and path.is_file()
    ]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def ratings_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.ratings.csv")


def write_pair_summary(counts: pd.DataFrame, *, path: Path, raw: bool = False) -> pd.DataFrame:
    """Per variant pair: the headline win rate with its Wilson interval over comparisons, and
    the share of judgments (ties half), each labelled by its column name."""
    return write_table(pair_counts_summary(counts), path=path, raw=raw)


def write_table(table: pd.DataFrame, *, path: Path, raw: bool = False) -> pd.DataFrame:
    safe = table.copy()
    if not raw:
        for column in _text_columns(safe):
            safe[column] = safe[column].map(
                lambda v: neutralise_formula(v) if isinstance(v, str) else v
            )
    safe.to_csv(path, index=False)
    return table


def read_export(path: Path) -> pd.DataFrame:
    """An export file back as a DataFrame (csv, jsonl or parquet), for `frames.prepare`."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(
            path,
            keep_default_na=False,
            na_values={c: [""] for c in _NULLABLE_BOOLEANS | _INTEGERS},
        )
        for column in _text_columns(frame):
            frame[column] = frame[column].map(restore_formula)
        return frame
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=True)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise ExportError(f"Cannot read {path.name}: expected .csv, .jsonl or .parquet.")


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]


class _Counted:
    def __init__(self, rows: Iterable[tuple[Any, ...]]) -> None:
        self.rows, self.n = rows, 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for row in self.rows:
            self.n += 1
            yield row


class _progress:
    """tqdm around the rows when shown, the rows themselves otherwise."""

    def __init__(self, rows: Iterable[tuple[Any, ...]], *, total: int | None, show: bool) -> None:
        self.rows, self.total, self.show = rows, total, show
        self.bar: Any = None

    def __enter__(self) -> Iterable[tuple[Any, ...]]:
        if not self.show:
            return self.rows
        from tqdm import tqdm

        self.bar = tqdm(self.rows, total=self.total, unit=" judgments", file=sys.stderr)
        return self.bar  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _reason_lists(columns: tuple[str, ...]) -> dict[str, str]:
    """`quality_reasons` → `quality` for each reason-list column present."""
    return {f"{q}_reasons": q for q in QUESTIONS if f"{q}_reasons" in columns}


def flat_columns(columns: tuple[str, ...], *, keep_lists: bool) -> tuple[str, ...]:
    """Export columns with one boolean column per reason after (or instead of) each list."""
    lists = _reason_lists(columns)
    out: list[str] = []
    for column in columns:
        if column not in lists:
            out.append(column)
            continue
        if keep_lists:
            out.append(column)
        out += [reason_column(lists[column], code) for code in REASON_CODES[lists[column]]]
    return tuple(out)


def _flattener(
    columns: tuple[str, ...], *, keep_lists: bool, for_csv: bool, times_as_text: bool = True
) -> Callable[[tuple[Any, ...]], list[Any]]:
    """A function from a query row to the values of `flat_columns`."""
    lists = _reason_lists(columns)
    kind = columns.index("kind") if "kind" in columns else None
    steps: list[Callable[[tuple[Any, ...], list[Any]], None]] = []
    for k, column in enumerate(columns):
        if column in lists:
            codes = REASON_CODES[lists[column]]
            steps.append(partial(_reasons, k=k, codes=codes, keep=keep_lists))
        elif column in _TIMES and times_as_text:
            steps.append(partial(_time, k=k))
        elif column in _NULLABLE_BOOLEANS and for_csv:
            steps.append(partial(_nullable_bool, k=k))
        elif column == "gold_question":
            steps.append(partial(_gold_question, k=k, kind=kind))
        else:
            steps.append(partial(_plain, k=k))

    def flatten(row: tuple[Any, ...]) -> list[Any]:
        out: list[Any] = []
        for step in steps:
            step(row, out)
        return out

    return flatten


def _plain(row: tuple[Any, ...], out: list[Any], *, k: int) -> None:
    out.append(row[k])


def _time(row: tuple[Any, ...], out: list[Any], *, k: int) -> None:
    out.append(None if row[k] is None else row[k].isoformat(timespec="microseconds"))


def _nullable_bool(row: tuple[Any, ...], out: list[Any], *, k: int) -> None:
    out.append(None if row[k] is None else int(row[k]))


def _gold_question(row: tuple[Any, ...], out: list[Any], *, k: int, kind: int | None) -> None:
    # The question a gold comparison checks (quality when left blank); "none" elsewhere, so the
    # column is text in every study.
    if kind is not None and row[kind] != "gold":
        out.append("none")
    else:
        out.append(row[k] or "quality")


def _reasons(
    row: tuple[Any, ...], out: list[Any], *, k: int, codes: tuple[str, ...], keep: bool
) -> None:
    cited = row[k] or ()
    if keep:
        out.append(list(cited))
    out.extend(code in cited for code in codes)


def _write_csv(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str], raw: bool = False
) -> None:
    # None is an empty field; "\r\n" ends rows, so fields holding either character are quoted
    writer = csv.writer(out)
    writer.writerow(flat_columns(columns, keep_lists=False))
    flatten = _flattener(columns, keep_lists=False, for_csv=True)
    for row in rows:
        values = flatten(row)
        if not raw:
            values = [neutralise_formula(v) if isinstance(v, str) else v for v in values]
        writer.writerow(values)


def _write_jsonl(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str]
) -> None:
    names = flat_columns(columns, keep_lists=True)
    flatten = _flattener(columns, keep_lists=True, for_csv=False)
    for row in rows:
        out.write(json.dumps(dict(zip(names, flatten(row), strict=True)), ensure_ascii=False))
        out.write("\n")


def _write_arena(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str], question: str
) -> None:
    """FastChat's battle records for one question: `model_a` is the variant shown on the left.

    `winner` is "model_a" | "model_b" | "tie" in those (left, right) terms; `left` says which
    side of the pair ("a" = the design variant) was on the left.
    """
    at = {c: k for k, c in enumerate(columns)}
    out.write("[")
    first = True
    for row in rows:
        judged = row[at["judged_at"]]
        left_is_a = row[at["left"]] == "a"
        shown = (row[at["variant_a"]], row[at["variant_b"]])
        choice = row[at[question]]
        if choice != "tie":
            choice = "model_a" if (choice == "a") == left_is_a else "model_b"
        battle = {
            "question_id": str(row[at["prompt_id"]]),
            "model_a": shown[0] if left_is_a else shown[1],
            "model_b": shown[1] if left_is_a else shown[0],
            "winner": choice,
            "question": question,
            "judge": row[at["rater"]],
            "turn": 1,
            "anony": True,
            "language": "English",
            "tstamp": judged.timestamp() if isinstance(judged, dt.datetime) else judged,
            "left": row[at["left"]],
            "kind": row[at["kind"]],
            "is_flagged": bool(row[at["is_flagged"]] or row[at["rater_is_flagged"]]),
            "variant_a": shown[0],
            "variant_b": shown[1],
            "comparison_id": row[at["comparison_id"]],
            "judgment_id": row[at["judgment_id"]],
        }
        out.write(("\n" if first else ",\n") + json.dumps(battle, ensure_ascii=False))
        first = False
    out.write("\n]\n")


def _write_parquet(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = flat_columns(columns, keep_lists=True)
    flatten = _flattener(columns, keep_lists=True, for_csv=False, times_as_text=False)
    schema = pa.schema([(c, _arrow_type(c, pa)) for c in names])
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[list[Any]] = []
        for row in rows:
            batch.append(flatten(row))
            if len(batch) == PARQUET_BATCH:
                writer.write_table(_arrow_table(batch, names, schema, pa))
                batch = []
        if batch:
            writer.write_table(_arrow_table(batch, names, schema, pa))


def _arrow_type(column: str, pa: Any) -> Any:
    if column in _INTEGERS:
        return pa.int64()
    if column in _BOOLEANS or column in _NULLABLE_BOOLEANS or "_reason_" in column:
        return pa.bool_()
    if column in _TIMES:
        return pa.timestamp("us", tz="UTC")
    if column.endswith("_reasons"):
        return pa.list_(pa.string())
    return pa.string()


def _arrow_table(batch: list[list[Any]], columns: tuple[str, ...], schema: Any, pa: Any) -> Any:
    data = list(zip(*batch, strict=True)) if batch else [() for _ in columns]
    arrays = [
        pa.array(
            [None if v is None else str(v) for v in values]
            if schema.field(c).type == pa.string()
            else list(values),
            type=schema.field(c).type,
        )
        for c, values in zip(columns, data, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
