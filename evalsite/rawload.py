"""Model instances from written-out SQL rows, for the few statements on the rating hot path.

Compiling a query through the ORM costs more CPU than PostgreSQL spends running it; the
hot path writes its SQL out and builds instances here, exactly as a QuerySet.only() would:
values converted as the ORM converts them, the other fields loaded on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def partial_instance(model: type[M], values: Mapping[str, Any]) -> M:
    """An instance of `model` from {attname: raw column value}; unnamed fields are deferred."""
    fields = [f for f in model._meta.concrete_fields if f.attname in values]
    converted = []
    for field in fields:
        value = values[field.attname]
        col = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    # Model.from_db takes the values in the model's field order.
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
