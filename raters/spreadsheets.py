"""Cells that spreadsheets would run as formulas (CSV injection), made inert. No Django.

Every CSV that staff or analysts open in a spreadsheet writes its text through
`neutralise_formula`: the judgments export (analysis/export.py), the pay file and the list of
workers who earned a completion code (raters/study_reports.py).
"""

from __future__ import annotations

# A cell that starts with one of these runs as a formula: a prompt or a worker id such as
# '=HYPERLINK(...)' would run on the machine of whoever opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: str) -> str:
    """A cell that a spreadsheet would evaluate, made inert with a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def restore_formula(value: object) -> object:
    """Undo `neutralise_formula` when reading a file back."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value
