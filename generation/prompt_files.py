"""Prompt sets from uploaded files: `.txt` (a prompt per line) or `.csv` (prompt, id, category).

A bad file raises `PromptFileError` with a message that names the problem and where it is, so the
admin can fix the file; nothing is written here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

MAX_PROMPT_CHARS = 1000
MAX_PROMPTS = 20_000
MAX_ID_CHARS = 100
MAX_CATEGORY_CHARS = 100


class PromptFileError(ValueError):
    """A prompt file that cannot be used, with a message meant for the admin who uploaded it."""


@dataclass(frozen=True)
class PromptRow:
    external_id: str
    text: str
    category: str = ""


def parse_prompt_file(*, filename: str, data: bytes) -> list[PromptRow]:
    """Rows of a `.txt` or `.csv` prompt file; raises PromptFileError on any problem."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in ("txt", "csv"):
        raise PromptFileError(
            f"Unsupported file type {('.' + extension) if extension else '(none)'}: "
            "upload a .txt file (one prompt per line) or a .csv file with a 'prompt' column."
        )
    text = _decode(data)
    if "\x00" in text:
        # PostgreSQL text cannot store NUL, and no prompt needs one: a binary file, most likely.
        line = text[: text.index("\x00")].count("\n") + 1
        raise PromptFileError(
            f"The file contains a NUL character on line {line}: upload a plain text file."
        )
    if not text.strip():
        raise PromptFileError("The file is empty: it contains no prompts.")
    rows = _parse_csv(text) if extension == "csv" else _parse_txt(text)
    if not rows:
        raise PromptFileError("The file is empty: it contains no prompts.")
    if len(rows) > MAX_PROMPTS:
        raise PromptFileError(f"The file has {len(rows)} prompts; the limit is {MAX_PROMPTS}.")
    return rows


def _decode(data: bytes) -> str:
    try:
        # utf-8-sig drops the byte-order mark that spreadsheet programs put in front.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PromptFileError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}). "
            "Save it as UTF-8 and upload it again."
        ) from exc


def _check_text(text: str, line: int) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptFileError(
            f"The prompt on line {line} is {len(text)} characters long; "
            f"the limit is {MAX_PROMPT_CHARS}."
        )


def _parse_txt(text: str) -> list[PromptRow]:
    rows: list[PromptRow] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        prompt = raw.strip()
        if not prompt:
            continue
        _check_text(prompt, line)
        rows.append(PromptRow(external_id=str(len(rows) + 1), text=prompt))
    return rows


def _parse_csv(text: str) -> list[PromptRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [(name or "").strip().lower() for name in reader.fieldnames or []]
    if "prompt" not in columns:
        found = ", ".join(repr(c) for c in columns if c) or "none"
        raise PromptFileError(
            f"The CSV file has no 'prompt' column (columns found: {found}). "
            "The first line must name the columns: prompt, and optionally id and category."
        )
    reader.fieldnames = columns
    has_ids = "id" in columns
    rows: list[PromptRow] = []
    seen: dict[str, int] = {}
    try:
        for record in reader:
            # The header is line 1; multi-line quoted cells make reader.line_num the reliable count.
            line = reader.line_num
            prompt = (record.get("prompt") or "").strip()
            if not prompt:
                if not any((value or "").strip() for value in record.values() if value):
                    continue
                raise PromptFileError(f"Line {line} has an empty prompt.")
            _check_text(prompt, line)
            external_id = (record.get("id") or "").strip() if has_ids else str(len(rows) + 1)
            if not external_id:
                raise PromptFileError(f"Line {line} has an empty id.")
            if len(external_id) > MAX_ID_CHARS:
                raise PromptFileError(f"The id on line {line} is over {MAX_ID_CHARS} characters.")
            if external_id in seen:
                raise PromptFileError(
                    f"Duplicate id {external_id!r} on lines {seen[external_id]} and {line}: "
                    "each prompt needs its own id."
                )
            seen[external_id] = line
            category = (record.get("category") or "").strip()
            if len(category) > MAX_CATEGORY_CHARS:
                raise PromptFileError(
                    f"The category on line {line} is over {MAX_CATEGORY_CHARS} characters."
                )
            rows.append(PromptRow(external_id=external_id, text=prompt, category=category))
    except csv.Error as exc:
        raise PromptFileError(
            f"The CSV file is malformed near line {reader.line_num}: {exc}."
        ) from exc
    return rows
