"""The judgments frame every statistic reads: one row per judgment, in A/B terms. No Django.

`prepare` turns rows from the database or from an export file (csv, jsonl, parquet) into the
canonical frame: choices as strings 'a' | 'b' | 'tie', reasons as bit masks over `REASON_CODES`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from raters.juice import FAITHFULNESS_REASONS, QUALITY_REASONS, TIE_REASONS

QUESTIONS: tuple[str, ...] = ("quality", "faithfulness")
CHOICES: tuple[str, ...] = ("a", "b", "tie")
# Bit i of a reasons mask means REASON_CODES[question][i] was cited.
REASON_CODES: dict[str, tuple[str, ...]] = {
    "quality": (*QUALITY_REASONS, *TIE_REASONS),
    "faithfulness": (*FAITHFULNESS_REASONS, *TIE_REASONS),
}
REASON_LABELS: dict[str, str] = {**QUALITY_REASONS, **FAITHFULNESS_REASONS, **TIE_REASONS}

REQUIRED_COLUMNS: tuple[str, ...] = (
    "comparison_id",
    "prompt_id",
    "variant_a",
    "variant_b",
    "rater",
    "left_is_a",
    "quality",
    "faithfulness",
)
DEFAULTS: dict[str, object] = {
    "kind": "real",
    "quality_reasons": "",
    "faithfulness_reasons": "",
    "time_spent_ms": 0,
    "is_flagged": False,
    "rater_is_flagged": False,
    "is_simulated": False,
    "judged_at": pd.NaT,
    "gold_question": "",
    "gold_correct": None,
}


class FrameError(ValueError):
    """The rows cannot be read as judgments; the message names what is wrong."""


def prepare(rows: pd.DataFrame) -> pd.DataFrame:
    """The canonical judgments frame from database rows or an export file.

    Accepts reasons as lists, as ';'-joined strings, as ready masks or as one boolean column
    per reason (`quality_reason_pixel_sharpness`, …, as csv exports write them), and the
    side shown left either as `left_is_a` or as `left` ('a' | 'b').
    """
    frame = rows.copy()
    for question in QUESTIONS:
        flags = [f"{question}_reason_{code}" for code in REASON_CODES[question]]
        if f"{question}_reasons" not in frame and all(f in frame for f in flags):
            # one boolean column per reason (csv exports): bit i set where reason i is true
            cited = frame[flags].fillna(False).astype(bool).to_numpy()
            frame[f"{question}_reasons"] = cited @ (1 << np.arange(len(flags), dtype=np.int64))
    if "left_is_a" not in frame and "left" in frame:
        frame["left_is_a"] = frame["left"].astype(str) == "a"
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise FrameError(f"Judgments lack columns: {', '.join(missing)}.")
    for column, default in DEFAULTS.items():
        if column not in frame:
            frame[column] = default
    for question in QUESTIONS:
        frame[question] = frame[question].astype(str)
        bad = ~frame[question].isin(CHOICES)
        if bad.any():
            raise FrameError(
                f"{question} holds {frame.loc[bad, question].iloc[0]!r}; expected a, b or tie."
            )
        column = f"{question}_reasons"
        if not pd.api.types.is_integer_dtype(frame[column]):
            frame[column] = encode_reasons(frame[column], question=question)
    frame["pair"] = frame["variant_a"].astype(str) + " vs " + frame["variant_b"].astype(str)
    frame["rater"] = frame["rater"].astype(str)
    frame["left_is_a"] = frame["left_is_a"].astype(bool)
    for column in ("is_flagged", "rater_is_flagged", "is_simulated"):
        frame[column] = frame[column].fillna(False).astype(bool)
    frame["time_spent_ms"] = pd.to_numeric(frame["time_spent_ms"]).fillna(0).astype(np.int64)
    frame["judged_at"] = pd.to_datetime(frame["judged_at"], utc=True, format="ISO8601")
    return frame.reset_index(drop=True)


def encode_reasons(values: pd.Series, *, question: str) -> pd.Series:
    """Lists (or ';'-joined strings) of reason codes as bit masks; unknown codes are an error."""
    codes = REASON_CODES[question]
    lists = values.map(_as_list)
    exploded = lists.explode()
    exploded = exploded[exploded.notna() & (exploded != "")]
    bit = pd.Series(exploded.map({code: i for i, code in enumerate(codes)}), dtype="float64")
    if bit.isna().any():
        unknown = exploded[bit.isna()].iloc[0]
        raise FrameError(f"Unknown {question} reason {unknown!r}.")
    masks = np.zeros(len(values), dtype=np.int64)
    positions = np.asarray(values.index.get_indexer(bit.index))
    np.bitwise_or.at(masks, positions, np.left_shift(1, bit.to_numpy(np.int64)))
    return pd.Series(masks, index=values.index)


def masks_from_json(values: pd.Series, *, question: str) -> pd.Series:
    """Reasons stored as JSON text (as the database holds them) to bit masks, per unique text."""
    texts = values.fillna("[]").astype(str)
    uniques = pd.Series(texts.unique())
    masks = encode_reasons(uniques.map(json.loads), question=question)
    return texts.map(dict(zip(uniques, masks, strict=True))).astype(np.int64)


def reason_matrix(masks: np.ndarray, *, question: str) -> np.ndarray:
    """(n, len(REASON_CODES[question])) booleans: which reasons each judgment cited."""
    bits = np.arange(len(REASON_CODES[question]), dtype=np.int64)
    return ((np.asarray(masks, dtype=np.int64)[:, None] >> bits) & 1).astype(bool)


def real_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Headline numbers: gold and mirrored comparisons are quality control, not results."""
    return frame[frame["kind"] == "real"]


def without_flagged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~(frame["is_flagged"] | frame["rater_is_flagged"])]


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [part for part in value.split(";") if part]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(part) for part in value]  # type: ignore[attr-defined]
