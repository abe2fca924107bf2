"""The only Django-aware module of analysis/: judgments as plain rows, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from raters.models import Judgment, Study

JUDGMENT_COLUMNS: tuple[str, ...] = (
    "study",
    "comparison_id",
    "prompt_id",
    "prompt",
    "variant_a",
    "variant_b",
    "left",
    "rater_id",
    "quality",
    "quality_reasons",
    "faithfulness",
    "faithfulness_reasons",
    "time_spent_ms",
    "assigned_at",
    "judged_at",
)


def judgment_rows(
    *, study: Study | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """One dict per judgment, in A/B terms, streamed from the database in chunks."""
    queryset = Judgment.objects.order_by("id").values(
        "id",
        "assignment__comparison__study__slug",
        "assignment__comparison_id",
        "assignment__comparison__prompt_id",
        "assignment__comparison__prompt__text",
        "assignment__comparison__pair__variant_a__slug",
        "assignment__comparison__pair__variant_a__version",
        "assignment__comparison__pair__variant_b__slug",
        "assignment__comparison__pair__variant_b__version",
        "assignment__left_is_a",
        "assignment__rater_id",
        "assignment__created_at",
        "quality",
        "quality_reasons",
        "faithfulness",
        "faithfulness_reasons",
        "time_spent_ms",
        "created_at",
    )
    if study is not None:
        queryset = queryset.filter(assignment__comparison__study=study)
    for row in queryset.iterator(chunk_size=chunk_size):
        yield {
            "study": row["assignment__comparison__study__slug"],
            "comparison_id": row["assignment__comparison_id"],
            "prompt_id": row["assignment__comparison__prompt_id"],
            "prompt": row["assignment__comparison__prompt__text"],
            "variant_a": _variant(row, "a"),
            "variant_b": _variant(row, "b"),
            "left": "a" if row["assignment__left_is_a"] else "b",
            "rater_id": row["assignment__rater_id"],
            "quality": row["quality"],
            "quality_reasons": list(row["quality_reasons"]),
            "faithfulness": row["faithfulness"],
            "faithfulness_reasons": list(row["faithfulness_reasons"]),
            "time_spent_ms": row["time_spent_ms"],
            "assigned_at": row["assignment__created_at"].isoformat(),
            "judged_at": row["created_at"].isoformat(),
        }


def _variant(row: dict[str, Any], side: str) -> str:
    prefix = f"assignment__comparison__pair__variant_{side}__"
    return f"{row[prefix + 'slug']}@v{row[prefix + 'version']}"
