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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from .stats import pair_counts_summary

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet", "arena-json")
PARQUET_BATCH = 50_000
_INTEGERS = {
    "judgment_id", "comparison_id", "pair_id", "prompt_id", "video_a_id", "video_b_id",
    "time_spent_ms", "watch_ms", "replays", "seeks",
}  # fmt: skip
_BOOLEANS = {"is_flagged", "rater_is_flagged", "is_simulated", "gold_correct", "mirror_consistent"}
_TIMES = {"assigned_at", "judged_at"}
_ARENA_WINNER = {"a": "model_a", "b": "model_b", "tie": "tie"}


class ExportError(ValueError):
    """Bad export arguments, with a message for the analyst."""


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def write_judgments(
    rows: Iterable[tuple[Any, ...]],
    *,
    columns: tuple[str, ...],
    path: Path,
    fmt: str,
    total: int | None = None,
    progress: bool | None = None,
) -> int:
    """Stream rows into `path` in format `fmt`; returns the number of rows written.

    A progress bar goes to stderr when it is a terminal (or when `progress` is True).
    """
    check_format(fmt)
    show = sys.stderr.isatty() if progress is None else progress
    partial = path.with_name(f".{path.name}.partial")
    counted = _Counted(rows)
    try:
        with _progress(counted, total=total, show=show) as tracked:
            if fmt == "parquet":
                _write_parquet(tracked, columns=columns, path=partial)
            else:
                with partial.open("w", newline="", encoding="utf-8") as out:
                    writer = {"csv": _write_csv, "jsonl": _write_jsonl, "arena-json": _write_arena}
                    writer[fmt](tracked, columns=columns, out=out)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written file left behind
        raise
    os.replace(partial, path)
    return counted.n


def summary_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.summary.csv")


def write_pair_summary(counts: pd.DataFrame, *, path: Path) -> pd.DataFrame:
    """Per variant pair: judgments and A's share per question (ties half), with Wilson CIs."""
    summary = pair_counts_summary(counts)
    summary.to_csv(path, index=False)
    return summary


def write_table(table: pd.DataFrame, *, path: Path) -> pd.DataFrame:
    table.to_csv(path, index=False)
    return table


def read_export(path: Path) -> pd.DataFrame:
    """An export file back as a DataFrame (csv, jsonl or parquet), for `frames.prepare`."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values={"gold_correct": [""]})
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=True)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise ExportError(f"Cannot read {path.name}: expected .csv, .jsonl or .parquet.")


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


def _write_csv(rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str]) -> None:
    writer = csv.writer(out)  # writes None as an empty field
    writer.writerow(columns)
    times = [k for k, c in enumerate(columns) if c in _TIMES]
    lists = [k for k, c in enumerate(columns) if c.endswith("_reasons")]
    for row in rows:
        values = list(row)
        for k in times:
            if values[k] is not None:
                values[k] = values[k].isoformat()
        for k in lists:
            values[k] = ";".join(values[k])
        writer.writerow(values)


def _write_jsonl(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str]
) -> None:
    times = [k for k, c in enumerate(columns) if c in _TIMES]
    for row in rows:
        values = list(row)
        for k in times:
            if values[k] is not None:
                values[k] = values[k].isoformat()
        out.write(json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False))
        out.write("\n")


def _write_arena(
    rows: Iterable[tuple[Any, ...]], *, columns: tuple[str, ...], out: IO[str]
) -> None:
    """FastChat `clean_battle` records: one battle per real judgment, winner from quality."""
    at = {c: k for k, c in enumerate(columns)}
    out.write("[")
    first = True
    for row in rows:
        if row[at["kind"]] != "real":
            continue
        judged = row[at["judged_at"]]
        battle = {
            "question_id": str(row[at["prompt_id"]]),
            "model_a": row[at["variant_a"]],
            "model_b": row[at["variant_b"]],
            "winner": _ARENA_WINNER[row[at["quality"]]],
            "winner_faithfulness": _ARENA_WINNER[row[at["faithfulness"]]],
            "judge": row[at["rater"]],
            "turn": 1,
            "anony": True,
            "language": "English",
            "tstamp": judged.timestamp() if isinstance(judged, dt.datetime) else judged,
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

    schema = pa.schema([(c, _arrow_type(c, pa)) for c in columns])
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == PARQUET_BATCH:
                writer.write_table(_arrow_table(batch, columns, schema, pa))
                batch = []
        if batch:
            writer.write_table(_arrow_table(batch, columns, schema, pa))


def _arrow_type(column: str, pa: Any) -> Any:
    if column in _INTEGERS:
        return pa.int64()
    if column in _BOOLEANS:
        return pa.bool_()
    if column in _TIMES:
        return pa.timestamp("us", tz="UTC")
    if column.endswith("_reasons"):
        return pa.list_(pa.string())
    return pa.string()


def _arrow_table(
    batch: list[tuple[Any, ...]], columns: tuple[str, ...], schema: Any, pa: Any
) -> Any:
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
