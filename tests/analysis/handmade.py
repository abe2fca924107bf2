"""Small hand-built judgment sets whose numbers the tests work out by hand."""

from __future__ import annotations

import pandas as pd

from analysis.frames import prepare


def judgments(rows: list[tuple], **extra: list) -> pd.DataFrame:
    """rows: (comparison, prompt, variant_a, variant_b, rater, left_is_a, quality, faithfulness)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "comparison_id",
            "prompt_id",
            "variant_a",
            "variant_b",
            "rater",
            "left_is_a",
            "quality",
            "faithfulness",
        ],
    )
    for column, values in extra.items():
        frame[column] = values
    if "quality_reasons" not in frame:
        frame["quality_reasons"] = [
            [] if q == "tie" else ["pixel_sharpness"] for q in frame["quality"]
        ]
    if "faithfulness_reasons" not in frame:
        frame["faithfulness_reasons"] = [
            [] if f == "tie" else ["spatial_alignment"] for f in frame["faithfulness"]
        ]
    return prepare(frame)


def votes(
    comparison: int, prompt: int, pair: tuple[str, str], quality: str, faith: str = ""
) -> list:
    """One comparison's judgments from a string of choices, e.g. 'aab' → raters r0 r1 r2."""
    faith = faith or quality
    out = []
    for k, (q, f) in enumerate(zip(quality, faith, strict=True)):
        expand = {"a": "a", "b": "b", "t": "tie"}
        out.append((comparison, prompt, *pair, f"r{k}", k % 2 == 0, expand[q], expand[f]))
    return out
