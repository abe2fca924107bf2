"""The only Django-aware module of analysis/: judgments out of the database, as rows or frames.

Reads rely on the raters contract (Study, VariantPair, Comparison, Assignment, Judgment, Rater)
and, where present, on the QC fields `Judgment.gold_correct` and `Comparison.gold_question`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce

from raters.models import Assignment, Comparison, Judgment, Rater, Study, VariantPair
from raters.spreadsheets import FORMULA_STARTS

from . import frames, metrics
from .counts import study_counts
from .summary import (
    StudySummary,
    ablation_table,
    side_by_side,
    summarise,
    summarise_many,
)

_A = "assignment__comparison__pair__variant_a__"
_B = "assignment__comparison__pair__variant_b__"
# (export column, database path); `None` paths are filled in Python.
_EXPORT_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("study", "assignment__comparison__study__slug"),
    ("judgment_id", "id"),
    ("comparison_id", "assignment__comparison_id"),
    ("kind", "assignment__comparison__kind"),
    ("pair_id", "assignment__comparison__pair_id"),
    ("prompt_id", "assignment__comparison__prompt_id"),
    ("prompt", "assignment__comparison__prompt__text"),
    ("variant_a", None),
    ("variant_b", None),
    ("video_a_id", "assignment__comparison__video_a_id"),
    ("video_b_id", "assignment__comparison__video_b_id"),
    ("seed_a", "assignment__comparison__video_a__job__seed"),
    ("seed_b", "assignment__comparison__video_b__job__seed"),
    ("left", None),
    ("rater", None),
    ("quality", "quality"),
    ("quality_reasons", "quality_reasons"),
    ("faithfulness", "faithfulness"),
    ("faithfulness_reasons", "faithfulness_reasons"),
    ("time_spent_ms", "time_spent_ms"),
    ("watch_ms", "watch_ms"),
    ("replays", "replays"),
    ("seeks", "seeks"),
    ("is_flagged", "is_flagged"),
    ("rater_is_flagged", "rater_flagged"),
    ("is_simulated", "is_simulated"),
    ("assigned_at", "assignment__created_at"),
    ("judged_at", "created_at"),
)
_OPTIONAL_FIELDS: tuple[tuple[str, str, type, str], ...] = (
    # (export column, database path, model, field name on that model)
    ("gold_question", "assignment__comparison__gold_question", Comparison, "gold_question"),
    ("gold_correct", "gold_correct", Judgment, "gold_correct"),
    ("mirror_consistent", "mirror_consistent", Judgment, "mirror_consistent"),
)
_HIDDEN = (
    f"{_A}slug",
    f"{_A}version",
    f"{_B}slug",
    f"{_B}version",
    "assignment__left_is_a",
    "assignment__rater_id",
    "assignment__rater__rater__external_id",
)


@dataclass(frozen=True)
class ExportQuery:
    """What to export: the column names and the rows, counted before streaming."""

    columns: tuple[str, ...]
    count: int
    rows: Iterator[tuple[Any, ...]]


def judgments(*, study: Study | None = None, include_simulated: bool = False) -> QuerySet[Judgment]:
    queryset = Judgment.objects.order_by("id")
    if study is not None:
        queryset = queryset.filter(assignment__comparison__study=study)
    if not include_simulated:
        queryset = queryset.filter(is_simulated=False).exclude(
            assignment__rater__rater__is_simulated=True
        )
    return queryset


def _export_columns(
    *, include_rater_ids: bool
) -> tuple[list[tuple[str, str | None]], list[str], list[str]]:
    """An export's (column, database path) pairs, its column names and the paths it reads."""
    optional = [(name, path) for name, path, model, field in _OPTIONAL_FIELDS if _has(model, field)]
    fields = [(name, path) for name, path in _EXPORT_FIELDS] + optional
    columns = [name for name, _ in fields]
    if include_rater_ids:
        columns.insert(columns.index("rater") + 1, "rater_external_id")
    paths = [path for _, path in fields if path is not None] + list(_HIDDEN)
    return fields, columns, paths


def _exported(
    *, study: Study | None, include_simulated: bool, include_qc: bool
) -> QuerySet[Judgment]:
    """The judgments an export holds: real comparisons only unless `include_qc`."""
    queryset = judgments(study=study, include_simulated=include_simulated)
    if not include_qc:
        queryset = queryset.filter(assignment__comparison__kind=Comparison.Kind.REAL)
    return queryset


def export_query(
    *,
    study: Study | None = None,
    include_rater_ids: bool = False,
    include_simulated: bool = False,
    include_qc: bool = False,
    chunk_size: int = 5000,
) -> ExportQuery:
    """One tuple per judgment in A/B terms, streamed from a server-side cursor in chunks.

    Real comparisons only unless `include_qc` adds the gold and mirrored ones (their `kind`
    column says which).
    """
    fields, columns, paths = _export_columns(include_rater_ids=include_rater_ids)
    queryset = _exported(study=study, include_simulated=include_simulated, include_qc=include_qc)
    return ExportQuery(
        columns=tuple(columns),
        count=queryset.count(),
        rows=_rows(queryset, paths, fields, include_rater_ids, chunk_size),
    )


def export_sql(
    *, study: Study | None = None, include_simulated: bool = False, include_qc: bool = False
) -> tuple[str, tuple[Any, ...]]:
    """The SELECT behind `export_query`'s rows, for benchmarks that COPY it raw."""
    _, _, paths = _export_columns(include_rater_ids=False)
    queryset = _exported(study=study, include_simulated=include_simulated, include_qc=include_qc)
    queryset = queryset.annotate(
        rater_flagged=Coalesce(F("assignment__rater__rater__is_flagged"), Value(False))
    )
    sql, params = queryset.values_list(*paths).query.sql_with_params()
    return sql, tuple(params)


def _rows(
    queryset: QuerySet[Judgment],
    paths: list[str],
    fields: list[tuple[str, str | None]],
    include_rater_ids: bool,
    chunk_size: int,
) -> Iterator[tuple[Any, ...]]:
    # Direct columns come first in `paths`, in output order: runs of them are tuple slices,
    # and only the computed columns (variants, left, rater) are built in Python.
    at = {path: k for k, path in enumerate(paths)}
    plan: list[tuple[int, int] | str] = []
    position = 0
    for name, path in fields:
        if path is None:
            plan.append(name)
        elif plan and isinstance(plan[-1], tuple):
            plan[-1] = (plan[-1][0], position + 1)
            position += 1
        else:
            plan.append((position, position + 1))
            position += 1
    a_slug, a_version = at[_A + "slug"], at[_A + "version"]
    b_slug, b_version = at[_B + "slug"], at[_B + "version"]
    left_is_a, user = at["assignment__left_is_a"], at["assignment__rater_id"]
    external = at["assignment__rater__rater__external_id"]
    key = settings.SECRET_KEY.encode()
    pseudonyms: dict[int, str] = {}
    queryset = queryset.annotate(
        rater_flagged=Coalesce(F("assignment__rater__rater__is_flagged"), Value(False))
    )
    for row in queryset.values_list(*paths).iterator(chunk_size=chunk_size):
        out: list[Any] = []
        for step in plan:
            if isinstance(step, tuple):
                out.extend(row[step[0] : step[1]])
            elif step == "variant_a":
                out.append(f"{row[a_slug]}@v{row[a_version]}")
            elif step == "variant_b":
                out.append(f"{row[b_slug]}@v{row[b_version]}")
            elif step == "left":
                out.append("a" if row[left_is_a] else "b")
            elif include_rater_ids:
                out += [str(row[user]), row[external] or ""]
            else:
                pseudonym = pseudonyms.get(row[user])
                if pseudonym is None:
                    pseudonym = pseudonyms[row[user]] = rater_hash(row[user], key=key)
                out.append(pseudonym)
        yield tuple(out)


def formats_in_database() -> bool:
    """PostgreSQL writes CSV exports itself (`export_csv_copy`); other databases go row by row."""
    return connection.vendor == "postgresql"


class CopyBlocks:
    """COPY's blocks of bytes; `rows` is PostgreSQL's own count once they are consumed."""

    def __init__(self, sql: str, params: list[Any]) -> None:
        self.sql, self.params, self.rows = sql, params, 0

    def __iter__(self) -> Iterator[bytes]:
        with connection.cursor() as cursor:
            copy_sql = f"COPY ({self.sql}) TO STDOUT WITH (FORMAT csv)"
            with cursor.cursor.copy(copy_sql, self.params) as copy:
                for block in copy:
                    yield bytes(block)
            self.rows = cursor.cursor.rowcount


@dataclass(frozen=True)
class CopyExport:
    """A CSV export that PostgreSQL writes itself: the header and COPY's blocks of bytes."""

    columns: tuple[str, ...]
    blocks: CopyBlocks


def export_csv_copy(
    *,
    study: Study | None = None,
    include_rater_ids: bool = False,
    include_simulated: bool = False,
    include_qc: bool = False,
    raw: bool = False,
) -> CopyExport:
    """The CSV of `export_query` (and `export._write_csv`) formatted by PostgreSQL in one COPY.

    Every cell is computed in SQL the way the Python writer formats it (booleans as True/False,
    QC booleans as 1/0/empty, times in ISO 8601 with microseconds, formula cells neutralised),
    so a million judgments leave the database at COPY speed instead of one Python row at a time.
    """
    from .export import flat_columns

    fields, columns, paths = _export_columns(include_rater_ids=include_rater_ids)
    queryset = _exported(study=study, include_simulated=include_simulated, include_qc=include_qc)
    alias = {path: f"c{k}" for k, path in enumerate(paths)}
    inner = (
        queryset.annotate(
            rater_flagged=Coalesce(F("assignment__rater__rater__is_flagged"), Value(False))
        )
        .order_by()
        .values(**{alias[path]: F(path) for path in paths})
    )
    inner_sql, inner_params = inner.query.sql_with_params()
    path_of = dict(fields)
    expressions: list[str] = []
    params: list[Any] = []
    quote = "''''"  # SQL for a string holding one apostrophe

    def text(sql: str) -> str:
        if raw:
            return sql
        params.append(list(FORMULA_STARTS))
        return f"CASE WHEN left({sql}, 1) = ANY(%s) THEN {quote} || {sql} ELSE {sql} END"

    def flag(sql: str) -> str:
        return f"CASE WHEN {sql} THEN 'True' ELSE 'False' END"

    for name in columns:
        path = path_of.get(name)
        column = f"e.{alias[path]}" if path else ""
        if name.endswith("_reasons"):
            question = name.removesuffix("_reasons")
            for code in frames.REASON_CODES[question]:
                params.append(json.dumps([code]))
                expressions.append(flag(f"{column} @> %s::jsonb"))
        elif name in ("is_flagged", "rater_is_flagged", "is_simulated"):
            expressions.append(flag(column))
        elif name in ("gold_correct", "mirror_consistent"):
            expressions.append(f"CASE WHEN {column} THEN '1' WHEN NOT {column} THEN '0' END")
        elif name in ("assigned_at", "judged_at"):
            expressions.append(
                f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
            )
        elif name == "gold_question":
            kind = f"e.{alias['assignment__comparison__kind']}"
            expressions.append(
                f"CASE WHEN {kind} <> 'gold' THEN 'none' "
                f"WHEN coalesce({column}, '') = '' THEN 'quality' ELSE {column} END"
            )
        elif name in ("variant_a", "variant_b"):
            side = _A if name == "variant_a" else _B
            label = f"(e.{alias[side + 'slug']} || '@v' || e.{alias[side + 'version']}::text)"
            expressions.append(text(label))
        elif name == "left":
            left_is_a = f"e.{alias['assignment__left_is_a']}"
            expressions.append(f"CASE WHEN {left_is_a} THEN 'a' ELSE 'b' END")
        elif name == "rater":
            user = f"e.{alias['assignment__rater_id']}"
            expressions.append(f"{user}::text" if include_rater_ids else "p.name")
        elif name == "rater_external_id":
            external = f"e.{alias['assignment__rater__rater__external_id']}"
            expressions.append(text(f"coalesce({external}, '')"))
        elif name in ("study", "prompt"):
            expressions.append(text(column))
        else:
            expressions.append(column)
    sql = f"SELECT {', '.join(expressions)} FROM ({inner_sql}) AS e"
    params += list(inner_params)
    if not include_rater_ids:
        # every rater who holds an assignment in scope: no pass over the judgments
        assignments = Assignment.objects.all()
        if study is not None:
            assignments = assignments.filter(comparison__study=study)
        users = sorted(set(assignments.values_list("rater_id", flat=True).distinct()))
        key = settings.SECRET_KEY.encode()
        sql += (
            " JOIN unnest(%s::integer[], %s::text[]) AS p(id, name)"
            f" ON p.id = e.{alias['assignment__rater_id']}"
        )
        params += [users, [rater_hash(user, key=key) for user in users]]
    sql += f" ORDER BY e.{alias['id']}"
    return CopyExport(
        columns=flat_columns(tuple(columns), keep_lists=False), blocks=CopyBlocks(sql, params)
    )


def rater_hash(user_id: int, *, key: bytes) -> str:
    """A stable pseudonym: keyed, so small user ids cannot be recovered by trying them all."""
    return hmac.new(key, f"rater:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]


def pair_counts(*, study: Study | None = None, include_simulated: bool = False) -> pd.DataFrame:
    """Per variant pair: comparisons, judgments, judgments per choice and question, and the
    comparisons whose strict majority chose A, all counted in the database."""
    votes: dict[str, Any] = {}
    for question in frames.QUESTIONS:
        for choice in frames.CHOICES:
            votes[f"{question}_{choice}"] = Count("id", filter=Q(**{question: choice}))
    per_comparison = (
        judgments(study=study, include_simulated=include_simulated)
        .filter(assignment__comparison__kind=Comparison.Kind.REAL)
        .order_by()
        .values(
            comparison=F("assignment__comparison_id"), pair=F("assignment__comparison__pair_id")
        )
        .annotate(**votes)
    )
    inner, params = per_comparison.query.sql_with_params()
    first = frames.QUESTIONS[0]
    sums = [
        "count(*) AS comparisons",
        "sum(" + " + ".join(f"{first}_{c}" for c in frames.CHOICES) + ") AS n",
        *(f"sum({name}) AS {name}" for name in votes),
    ]
    for question in frames.QUESTIONS:
        total = " + ".join(f"{question}_{c}" for c in frames.CHOICES)
        # the headline's majority: more than half of the comparison's votes for A
        sums.append(
            f"sum(CASE WHEN 2 * {question}_a > {total} THEN 1 ELSE 0 END) AS {question}_majority_a"
        )
    sql = f"SELECT pair, {', '.join(sums)} FROM ({inner}) AS per_comparison GROUP BY pair"
    with connection.cursor() as cursor, _parallel_groups(cursor):
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=names)
    counts = ["comparisons", "n", *votes] + [f"{q}_majority_a" for q in frames.QUESTIONS]
    if frame.empty:
        return pd.DataFrame(columns=["variant_a", "variant_b", *counts])
    pairs = VariantPair.objects.filter(pk__in=frame["pair"].tolist()).select_related(
        "variant_a", "variant_b"
    )
    labels = {pair.pk: (_label(pair.variant_a), _label(pair.variant_b)) for pair in pairs}
    frame["variant_a"] = frame["pair"].map(lambda pk: labels[pk][0])
    frame["variant_b"] = frame["pair"].map(lambda pk: labels[pk][1])
    frame[counts] = frame[counts].astype(np.int64)
    return frame.groupby(["variant_a", "variant_b"], as_index=False)[counts].sum()


@contextmanager
def _parallel_groups(cursor: Any) -> Iterator[None]:
    """PostgreSQL's planner told that handing rows between processes is cheap, for one
    statement: grouping a million judgments by comparison then runs on every core. By default
    it ran on one (2.2 s at a million judgments; 1.4–1.5 s on two cores). The setting is put
    back afterwards; elsewhere than on PostgreSQL this does nothing."""
    if connection.vendor != "postgresql":
        yield
        return
    cursor.execute("SELECT current_setting('parallel_tuple_cost')")
    (before,) = cursor.fetchone()
    cursor.execute("SELECT set_config('parallel_tuple_cost', '0.01', false)")
    try:
        yield
    finally:
        if connection.connection.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            cursor.execute("SELECT set_config('parallel_tuple_cost', %s, false)", [before])


# Canonical frame column → database path, for the dashboard's loader (no prompt texts).
_FRAME_FIELDS: tuple[tuple[str, str], ...] = (
    ("judgment_id", "id"),
    ("comparison_id", "assignment__comparison_id"),
    ("prompt_id", "assignment__comparison__prompt_id"),
    ("pair_id", "assignment__comparison__pair_id"),
    ("kind", "assignment__comparison__kind"),
    ("rater", "assignment__rater_id"),
    ("left_is_a", "assignment__left_is_a"),
    ("quality", "quality"),
    ("faithfulness", "faithfulness"),
    ("quality_reasons", "quality_reasons_text"),
    ("faithfulness_reasons", "faithfulness_reasons_text"),
    ("time_spent_ms", "time_spent_ms"),
    ("is_flagged", "is_flagged"),
    ("rater_is_flagged", "rater_flagged"),
    ("is_simulated", "is_simulated"),
    ("judged_at", "created_at"),
)


def judgment_frame(*, study: Study, include_simulated: bool = False) -> pd.DataFrame:
    """The study's judgments as the canonical frame of `frames.prepare`.

    On PostgreSQL the rows come through COPY … TO STDOUT into pandas (a million judgments in
    seconds, without a Python object per row); elsewhere through a plain iterator.
    """
    optional = [
        (name, path) for name, path, model, field in _OPTIONAL_FIELDS[:2] if _has(model, field)
    ]
    fields = list(_FRAME_FIELDS) + optional
    queryset = (
        judgments(study=study, include_simulated=include_simulated)
        .annotate(
            quality_reasons_text=Cast("quality_reasons", TextField()),
            faithfulness_reasons_text=Cast("faithfulness_reasons", TextField()),
            rater_flagged=Coalesce(F("assignment__rater__rater__is_flagged"), Value(False)),
        )
        .values_list(*[path for _, path in fields])
    )
    columns = [name for name, _ in fields]
    if connection.vendor == "postgresql":
        rows = _copy_out(queryset, columns)
    else:
        rows = pd.DataFrame.from_records(list(queryset.iterator()), columns=columns)
    for question in frames.QUESTIONS:
        rows[f"{question}_reasons"] = frames.masks_from_json(
            rows[f"{question}_reasons"], question=question
        )
    if "gold_question" in rows:
        rows["gold_question"] = rows["gold_question"].fillna("").replace("", "quality")
    labels = {
        pair.pk: (_label(pair.variant_a), _label(pair.variant_b))
        for pair in study.pairs.select_related("variant_a", "variant_b")
    }
    rows["variant_a"] = rows["pair_id"].map({k: a for k, (a, _) in labels.items()})
    rows["variant_b"] = rows["pair_id"].map({k: b for k, (_, b) in labels.items()})
    return frames.prepare(rows)


def _copy_csv(sql: str, params: Sequence[Any]) -> io.BytesIO:
    """`COPY (sql) TO STDOUT WITH CSV`, whole, ready to read: received first and parsed after,
    so PostgreSQL never waits on the parser (parsing while it arrived was slower). The export
    streams the same COPY instead (`CopyBlocks`)."""
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    return buffer


# COPY's binary format: a signature, 32-bit flags and the length of a header extension first,
# then per row a 16-bit field count and per field a 32-bit length (-1 for NULL) and the bytes,
# big-endian; -1 as the field count ends it.
_PGCOPY = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_PGCOPY) + 8
_BLOCK_BYTES = 4 << 20  # decoded this many bytes at a time: the whole never sits in memory
_INT32 = np.iinfo(np.int32)


def _copy_bigints(sql: str, params: Sequence[Any], *, columns: int) -> list[np.ndarray]:
    """The columns of `sql`, a SELECT of `columns` bigints that are never NULL, through
    `COPY (sql) TO STDOUT (FORMAT binary)`: every row has the same 2 + 12 × columns bytes, so
    numpy views each block of rows as a record array (no text to format or parse, which took
    a third of the dashboard's load at a million judgments). A column comes back in 32 bits
    when all of its values fit, else in 64."""
    row = np.dtype(
        [("fields", ">i2")]
        + [item for k in range(columns) for item in ((f"size{k}", ">i4"), (f"value{k}", ">i8"))]
    )
    parts: list[list[np.ndarray]] = [[] for _ in range(columns)]
    pending = bytearray()
    header_done = False

    def decode(final: bool) -> None:
        nonlocal header_done
        start = 0
        if not header_done:
            if len(pending) < _HEADER:
                return
            if bytes(pending[: len(_PGCOPY)]) != _PGCOPY:
                raise ValueError("COPY did not send PostgreSQL's binary format")
            extension = int.from_bytes(pending[_HEADER - 4 : _HEADER], "big")
            start, header_done = _HEADER + extension, True
        whole = (len(pending) - start - (2 if final else 0)) // row.itemsize
        records = np.frombuffer(pending, dtype=row, count=whole, offset=start)
        if (records["fields"] != columns).any() or any(
            (records[f"size{k}"] != 8).any() for k in range(columns)
        ):
            raise ValueError(f"COPY sent a row that is not {columns} bigints (a NULL?)")
        for k in range(columns):
            # 32 bits where a block's values fit (ids, times, the bit field): half the memory
            value = records[f"value{k}"]
            fits = len(value) == 0 or (_INT32.min <= value.min() and value.max() <= _INT32.max)
            parts[k].append(value.astype(np.int32 if fits else np.int64))
        del records, value
        del pending[: start + whole * row.itemsize]

    with connection.cursor() as cursor:
        copy_sql = f"COPY ({sql}) TO STDOUT (FORMAT binary)"
        with cursor.cursor.copy(copy_sql, params) as copy:
            for block in _copy_rows(copy.connection.pgconn):
                pending += block
                if len(pending) >= _BLOCK_BYTES:
                    decode(final=False)
    decode(final=True)
    if bytes(pending) != b"\xff\xff":
        raise ValueError("COPY's binary data did not end where its rows did")
    columns_out = []
    for part in parts:  # each column's blocks let go of as soon as they are joined
        columns_out.append(np.concatenate(part) if part else np.zeros(0, np.int64))
        part.clear()
    return columns_out


def _copy_rows(pgconn: Any) -> Iterator[memoryview]:
    """The rows of a `COPY ... TO STDOUT` that psycopg has started, read from libpq directly,
    then its final result. psycopg's own reader makes a generator round trip per row, which
    took 0.6 s of CPU at a million rows against 0.25 s here, on a core PostgreSQL needs.
    Waiting is a `select` (the GIL is let go of), and an error ends in psycopg's exception
    for it; psycopg's `Copy` block still cancels a COPY that an exception leaves unfinished."""
    while True:
        size, row = pgconn.get_copy_data(1)  # 1: return 0 rather than wait
        if size > 0:
            yield row
        elif size == 0:
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        elif size == -1:  # the rows are over: the final result follows
            break
        else:
            raise psycopg.OperationalError(pgconn.get_error_message())
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    failed = None
    while (result := pgconn.get_result()) is not None:  # all of them: libpq is then idle
        if result.status != psycopg.pq.ExecStatus.COMMAND_OK and failed is None:
            failed = psycopg.errors.error_from_result(result, encoding=pgconn._encoding)
    if failed is not None:
        raise failed


def _copy_out(queryset: QuerySet[Any], columns: list[str]) -> pd.DataFrame:
    sql, params = queryset.query.sql_with_params()
    buffer = _copy_csv(sql, params)
    text_columns = {"kind": str, "quality": str, "faithfulness": str, "gold_question": str}
    return pd.read_csv(
        buffer,
        names=columns,
        dtype={k: v for k, v in text_columns.items() if k in columns},
        keep_default_na=False,
        na_values={"gold_correct": [""]},
        true_values=["t"],
        false_values=["f"],
    )


def summary_sql(*, study: Study, include_simulated: bool = False) -> tuple[str, list[Any], bool]:
    """The SELECT behind `summary_frame` on PostgreSQL, its parameters, and whether it carries
    the gold fields (benchmarks/bench_export.py times its COPY alone as the dashboard's floor).
    """
    gold = all(_has(model, field) for _, _, model, field in _OPTIONAL_FIELDS[:2])
    inner = (
        judgments(study=study, include_simulated=include_simulated)
        .annotate(rater_flagged=Coalesce(F("assignment__rater__rater__is_flagged"), Value(False)))
        .order_by()
        .values(
            **{f"c{k}": F(path) for k, path in enumerate(_PACKED_SOURCES)},
            **({"gq": F(_OPTIONAL_FIELDS[0][1]), "gc": F(_OPTIONAL_FIELDS[1][1])} if gold else {}),
        )
    )
    inner_sql, inner_params = inner.query.sql_with_params()
    packed, packed_params = _packed_sql(gold=gold)
    ids = ", ".join(f"e.c{k}::bigint" for k in range(6))
    sql = f"SELECT {ids}, {_US}, {packed} FROM ({inner_sql}) AS e"
    return sql, [*packed_params, *inner_params], gold


def summary_frame(*, study: Study, include_simulated: bool = False) -> pd.DataFrame:
    """The study's judgments with only what `counts.study_counts` reads, in lean dtypes.

    The dashboard's loader. On PostgreSQL one COPY (`summary_sql`) sends eight integers per
    judgment: five ids, the time spent, the time judged in microseconds, and one bit field
    (`_packed_layout`) that holds both choices, both reason masks, the comparison's kind and
    gold question and every flag, computed by PostgreSQL. They come in COPY's binary format,
    which numpy reads as it arrives without parsing text (`_copy_bigints`), and numpy unpacks
    the bits, into choices, kinds and pairs as categoricals and reasons as bit masks.
    Counts from it equal those from `judgment_frame` (tests/analysis/test_dashboard_views.py).
    Elsewhere than on PostgreSQL it is `judgment_frame`.
    """
    if connection.vendor != "postgresql":
        return judgment_frame(study=study, include_simulated=include_simulated)
    sql, params, gold = summary_sql(study=study, include_simulated=include_simulated)
    names = ["judgment_id", "comparison_id", "prompt_id", "pair_id", "rater", "time_spent_ms"]
    raw = _copy_bigints(sql, params, columns=len(names) + 2)
    # In judgment order: the summary numbers prompts in the order of their first judgment.
    order = np.argsort(raw.pop(0), kind="stable")
    # Ids and times come in 32 bits where they fit (they always do below two billion
    # judgments); each column is let go of once it is put in order.
    *id_columns, judged_at, bits = [raw.pop(0)[order] for _ in range(len(raw))]
    del order
    rows = pd.DataFrame(dict(zip(names[1:], id_columns, strict=True)))
    rows["judged_at"] = pd.to_datetime(judged_at.astype(np.int64), unit="us", utc=True)
    del id_columns, judged_at
    for name, shift, width in _packed_layout(gold=gold):
        value = (bits >> shift) & ((1 << width) - 1)
        if name in frames.QUESTIONS:
            rows[name] = pd.Categorical.from_codes(value, dtype=_CHOICES)
        elif name == "kind":
            rows[name] = pd.Categorical.from_codes(value, categories=list(Comparison.Kind.values))
        elif name == "gold_question":
            rows[name] = pd.Categorical.from_codes(value, categories=list(frames.QUESTIONS))
        elif name == "gold_correct":
            rows[name] = np.where(value == 0, np.nan, value - 1.0)
        elif name.endswith("_reasons"):
            rows[name] = value.astype(np.int32)
        else:
            rows[name] = value.astype(bool)
    pairs = {
        pair.pk: (_label(pair.variant_a), _label(pair.variant_b))
        for pair in study.pairs.select_related("variant_a", "variant_b")
    }
    ids = np.array(sorted(pairs, key=lambda pk: " vs ".join(pairs[pk])), dtype=np.int64)
    position = pd.Index(ids).get_indexer(rows["pair_id"].to_numpy())
    for column, labels in (
        ("pair", [" vs ".join(pairs[pk]) for pk in ids]),
        ("variant_a", [pairs[pk][0] for pk in ids]),
        ("variant_b", [pairs[pk][1] for pk in ids]),
    ):
        codes, uniques = pd.factorize(pd.Index(labels, dtype=object), sort=True)
        rows[column] = pd.Categorical.from_codes(codes[position], categories=uniques)
    return rows


_CHOICES = pd.CategoricalDtype(list(frames.CHOICES))
# What the packed integer is made of: frame column -> database path (the gold fields, when
# present, come as e.gq and e.gc).
_PACKED_FROM = {
    "quality": "quality",
    "faithfulness": "faithfulness",
    "quality_reasons": "quality_reasons",
    "faithfulness_reasons": "faithfulness_reasons",
    "kind": "assignment__comparison__kind",
    "left_is_a": "assignment__left_is_a",
    "is_flagged": "is_flagged",
    "rater_is_flagged": "rater_flagged",
    "is_simulated": "is_simulated",
}
# The inner query's columns c0, c1, ...: the integer columns of the dashboard's COPY, in
# order, then the packed integer's sources.
_PACKED_SOURCES = (
    "id",
    "assignment__comparison_id",
    "assignment__comparison__prompt_id",
    "assignment__comparison__pair_id",
    "assignment__rater_id",
    "time_spent_ms",
    "created_at",
    *_PACKED_FROM.values(),
)
# date_part is a float8 (extract's numeric took a tenth of the COPY); float8 holds the epoch in
# microseconds exactly to 2255, so rounding gives the stored microsecond back.
_US = "round(date_part('epoch', e.c6) * 1000000)::bigint"


def _packed_layout(*, gold: bool) -> list[tuple[str, int, int]]:
    """(frame column, first bit, width) of each field of the dashboard's packed integer."""
    widths = [
        ("quality", 2),
        ("faithfulness", 2),
        ("quality_reasons", len(frames.REASON_CODES["quality"])),
        ("faithfulness_reasons", len(frames.REASON_CODES["faithfulness"])),
        ("kind", 2),
        ("left_is_a", 1),
        ("is_flagged", 1),
        ("rater_is_flagged", 1),
        ("is_simulated", 1),
        *([("gold_question", 1), ("gold_correct", 2)] if gold else []),
    ]
    layout, shift = [], 0
    for name, width in widths:
        layout.append((name, shift, width))
        shift += width
    assert shift < 63, "the packed fields must fit a bigint"
    return layout


def _packed_sql(*, gold: bool) -> tuple[str, list[Any]]:
    """The SQL sum that packs one judgment's fields by `_packed_layout`, and its parameters."""
    column = {name: f"e.c{_PACKED_SOURCES.index(path)}" for name, path in _PACKED_FROM.items()}
    column |= {"gold_question": "e.gq", "gold_correct": "e.gc"}
    terms: list[str] = []
    params: list[Any] = []

    def code(name: str, values: list[str], shift: int) -> str:
        whens = " ".join(f"WHEN %s THEN {k << shift}" for k in range(len(values)))
        params.extend(values)
        # anything else is NULL, which fails the integer parse: no value is silently miscoded
        return f"CASE {column[name]} {whens} END"

    for name, shift, _ in _packed_layout(gold=gold):
        if name in frames.QUESTIONS:
            terms.append(code(name, list(frames.CHOICES), shift))
        elif name == "kind":
            terms.append(code(name, list(Comparison.Kind.values), shift))
        elif name.endswith("_reasons"):
            for bit, reason in enumerate(frames.REASON_CODES[name.removesuffix("_reasons")]):
                # `?`: the reason is an element of the list (cheaper than `@> '["reason"]'`)
                params.append(reason)
                terms.append(f"CASE WHEN {column[name]} ? %s THEN {1 << (shift + bit)} ELSE 0 END")
        elif name == "gold_question":
            params.append(frames.QUESTIONS[1])  # code 1 of the gold_question categorical
            terms.append(f"CASE WHEN {column[name]} = %s THEN {1 << shift} ELSE 0 END")
        elif name == "gold_correct":
            terms.append(
                f"CASE WHEN {column[name]} IS NULL THEN 0 WHEN {column[name]} THEN {2 << shift} "
                f"ELSE {1 << shift} END"
            )
        else:
            terms.append(f"CASE WHEN {column[name]} THEN {1 << shift} ELSE 0 END")
    return "(" + " + ".join(terms) + ")::bigint", params


def _label(variant: Any) -> str:
    return f"{variant.slug}@v{variant.version}"


def score_frame(*, study: Study) -> pd.DataFrame:
    """Automatic metrics of both videos of each comparison, long form (`metrics.SCORE_COLUMNS`).

    On PostgreSQL the numeric keys both videos share are paired in SQL (a million-judgment
    study has 400,000 score dicts, which took seconds to decode in Python) and sent by COPY,
    parsed by pandas without a Python object per row; elsewhere `metrics.scores_from_json`
    pairs them. Both keep finite numbers only.
    """
    if connection.vendor != "postgresql":
        records = pd.DataFrame(
            list(study.comparisons.values_list("id", "video_a__scores", "video_b__scores")),
            columns=["comparison_id", "scores_a", "scores_b"],
        )
        return metrics.scores_from_json(records)
    comparison = Comparison._meta.db_table
    video = Comparison._meta.get_field("video_a").related_model._meta.db_table
    largest = "1.7976931348623157e308"

    def scores(side: str) -> str:
        return f"CASE WHEN jsonb_typeof(v{side}.scores) = 'object' THEN v{side}.scores END"

    def number(side: str) -> str:
        value = f"s{side}.value"
        return f"jsonb_typeof({value}) = 'number' AND abs(({value})::text::numeric) <= {largest}"

    sql = f"""
        SELECT c.id, sa.key, (sa.value)::text::float8, (sb.value)::text::float8
        FROM {comparison} c
        JOIN {video} va ON va.id = c.video_a_id
        JOIN {video} vb ON vb.id = c.video_b_id
        CROSS JOIN LATERAL jsonb_each({scores("a")}) sa
        JOIN LATERAL jsonb_each({scores("b")}) sb ON sb.key = sa.key
        WHERE c.study_id = %s AND {number("a")} AND {number("b")}
        ORDER BY c.id, sa.key COLLATE "C"
    """
    buffer = _copy_csv(sql, [study.pk])
    if not buffer.getbuffer().nbytes:
        return pd.DataFrame(columns=list(metrics.SCORE_COLUMNS))
    return pd.read_csv(
        buffer,
        names=list(metrics.SCORE_COLUMNS),
        dtype={"comparison_id": "int64", "metric": str, "score_a": float, "score_b": float},
        keep_default_na=False,
    )


@dataclass(frozen=True)
class DashboardData:
    """A study's summary over all judgments and without flagged raters."""

    summary: StudySummary
    unflagged: StudySummary
    include_simulated: bool


def study_summary(
    *, study: Study, include_simulated: bool = False, rounds: int = 1000
) -> DashboardData:
    """Both summaries of a study, cached until a judgment is added or a rater is flagged or
    cleared (or for 10 minutes: a deleted judgment shows then, or with the next one).

    The key is the study's latest judgment, found by walking the judgments' primary key
    backwards (milliseconds at a million judgments, where counting them took seconds), and the
    flagged raters' state, which changes whenever quality control stops or clears a rater.
    """
    latest_judgment = (
        judgments(study=study, include_simulated=include_simulated)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    flagged = Rater.objects.filter(is_flagged=True).aggregate(n=Count("pk"), last=Max("flagged_at"))
    state = (latest_judgment, flagged["n"], str(flagged["last"]))
    fingerprint = f"{study.pk}:{include_simulated}:{rounds}:{state}"
    key = "analysis-summary-" + hashlib.sha256(fingerprint.encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    # While ratings pour into a big study, recompute at most every 4× the last computation's
    # time: a 10,000-judgment study refreshes at once, a million-judgment one every few minutes.
    latest_key = f"analysis-latest-{study.pk}-{include_simulated}-{rounds}"
    latest = cache.get(latest_key)
    if latest is not None and _now() < latest[0]:
        return latest[1]  # type: ignore[no-any-return]
    started = _now()
    scores = _meanwhile(score_frame, study=study)
    frame = summary_frame(study=study, include_simulated=include_simulated)

    # Counted one after the other, so that the judgments are let go of before the summaries
    # start (memory peaks lower); summarised together (`summary.summarise_many`).
    every, kept = (
        study_counts(frame, include_simulated=include_simulated, without_flagged=flag)
        for flag in (False, True)
    )
    del frame
    summary, unflagged = summarise_many([every, kept], rounds=rounds, scores=scores.result())
    data = DashboardData(summary=summary, unflagged=unflagged, include_simulated=include_simulated)
    finished = _now()
    cache.set(key, data, timeout=600)
    cache.set(latest_key, (finished + 3 * (finished - started), data), timeout=600)
    return data


def _meanwhile(read: Callable[..., pd.DataFrame], **kwargs: Any) -> Future[pd.DataFrame]:
    """`read(**kwargs)` on a connection of its own in a thread: PostgreSQL answers it on the
    other core while this one counts. Inside a transaction, whose rows another connection
    cannot see (and on other databases), it runs here and now instead."""
    future: Future[pd.DataFrame] = Future()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        future.set_result(read(**kwargs))
        return future

    def run() -> None:
        try:
            future.set_result(read(**kwargs))
        except BaseException as error:  # handed to whoever asks for the result
            future.set_exception(error)
        finally:
            connection.close()  # this thread's own connection

    threading.Thread(target=run, name="dashboard-scores", daemon=True).start()
    return future


def _has(model: type, field: str) -> bool:
    try:
        model._meta.get_field(field)  # type: ignore[attr-defined]
    except FieldDoesNotExist:
        return False
    return True


@dataclass(frozen=True)
class AblationSummary:
    """`export_results --summary`: the ablation table and the Bradley–Terry ratings."""

    table: pd.DataFrame
    ratings: pd.DataFrame


def ablation_summary(
    *, study: Study | None = None, include_simulated: bool = False, rounds: int = 1000
) -> AblationSummary:
    """The ablation table of each study in scope, with agreement and unflagged columns, and
    each study's Bradley–Terry strengths per question with their bootstrap intervals."""
    studies = [study] if study is not None else list(Study.objects.order_by("slug"))
    tables, ratings = [], []
    for each in studies:
        frame = judgment_frame(study=each, include_simulated=include_simulated)
        if frame.empty:
            continue
        every = summarise(frame, rounds=rounds, include_simulated=include_simulated)
        kept = summarise(
            frames.without_flagged(frame), rounds=rounds, include_simulated=include_simulated
        )
        table = side_by_side(ablation_table(every), ablation_table(kept))
        for row in every.agreement.itertuples():
            table[f"{row.question}_study_kappa"] = row.fleiss_kappa
            table[f"{row.question}_study_alpha"] = row.krippendorff_alpha
        tables.append(table.assign(study=each.slug))
        for rating in every.ratings.values():
            ratings.append(rating.assign(study=each.slug))
    if not tables:
        return AblationSummary(
            table=pd.DataFrame(columns=["study", "pair"]),
            ratings=pd.DataFrame(columns=["study", "question", "variant"]),
        )
    out = pd.concat(tables, ignore_index=True)
    rated = pd.concat(ratings, ignore_index=True)
    return AblationSummary(
        table=out[["study", *[c for c in out.columns if c != "study"]]],
        ratings=rated[["study", "question", *[c for c in rated if c not in ("study", "question")]]],
    )


def study_report(*, study: Study, include_simulated: bool = False, rounds: int = 1000) -> str:
    """`export_results --format html`: the study's self-contained report."""
    import plotly

    from .report import StudySettings, html_report

    frame = judgment_frame(study=study, include_simulated=include_simulated)
    scores = score_frame(study=study)
    kwargs: dict[str, Any] = dict(rounds=rounds, include_simulated=include_simulated, scores=scores)
    summary = summarise(frame, **kwargs)
    settings_ = StudySettings(
        name=study.name,
        slug=study.slug,
        raters_per_comparison=study.raters_per_pair,
        allow_ties=study.allow_ties,
        mode=study.mode,
        gold_rate=study.gold_rate,
        mirror_rate=study.mirror_rate,
        require_qualification=study.require_qualification,
        target_ci_width=study.target_ci_width,
    )
    real = frames.real_only(frame)
    return html_report(
        settings=settings_,
        summary=summary,
        unflagged=summarise(frames.without_flagged(frame), **kwargs),
        judged=real["judged_at"],
        plotly_js=Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
    )


def _now() -> float:
    return time.time()
