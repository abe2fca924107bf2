"""Model instances from written-out SQL rows, for the few statements on the rating hot path.

Compiling a query through the ORM costs more CPU than PostgreSQL spends running it; the
hot path writes its SQL out and builds instances here, exactly as a QuerySet.only() would:
values converted as the ORM converts them, the other fields loaded on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str, names: Sequence[str] | None = None) -> str:
    """`alias.column, ...` for the given attnames (all concrete fields by default), in the
    model's field order: the order `instance` wants its values in."""
    return ", ".join(f"{alias}.{field.column}" for field in _fields(model, _key(names)))


def instance(
    model: type[M], values: Sequence[Any] | Mapping[str, Any], names: Sequence[str] | None = None
) -> M:
    """An instance of `model` from the raw values of `columns(model, alias, names)`, or from
    {attname: raw value}."""
    if isinstance(values, Mapping):
        names = list(values)
        values = [values[f.attname] for f in _fields(model, _key(names))]
    fields, converters = _plan(model, _key(names), connection.alias)
    converted = list(values)
    for index, col, functions in converters:
        value = converted[index]
        for convert in functions:
            value = convert(value, col, connection)
        converted[index] = value
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _key(names: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(sorted(names)) if names is not None else None


@functools.cache
def _fields(model: type[Model], names: tuple[str, ...] | None) -> list[Any]:
    return [f for f in model._meta.concrete_fields if names is None or f.attname in names]


@functools.cache
def _plan(
    model: type[Model], names: tuple[str, ...] | None, alias: str
) -> tuple[list[Any], list[tuple[int, Any, list[Any]]]]:
    fields = _fields(model, names)
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if functions:
            converters.append((index, col, functions))
    return fields, converters
