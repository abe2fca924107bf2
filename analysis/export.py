"""Writing judgment exports to files (csv, jsonl) with a per-variant-pair summary."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .stats import pair_win_rates

FORMATS: tuple[str, ...] = ("csv", "jsonl")


class ExportError(ValueError):
    """Bad export arguments, with a message for the analyst."""


def write_judgments(
    rows: Iterable[dict[str, Any]], *, path: Path, fmt: str, columns: tuple[str, ...]
) -> pd.DataFrame:
    """Stream rows into `path`; return the compact frame the summary is computed from."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    compact: list[tuple[str, str, str, str]] = []
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(columns)) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        for row in rows:
            compact.append(
                (row["variant_a"], row["variant_b"], row["quality"], row["faithfulness"])
            )
            if writer is not None:
                writer.writerow(
                    {k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()}
                )
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return pd.DataFrame(compact, columns=["variant_a", "variant_b", "quality", "faithfulness"])


def summary_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.summary.csv")


def write_summary(frame: pd.DataFrame, *, path: Path) -> pd.DataFrame:
    summary = pair_win_rates(frame)
    summary.to_csv(path, index=False)
    return summary
