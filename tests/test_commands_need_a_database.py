"""Commands on a database nobody has migrated, or that does not answer: a sentence, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evalsite.settings"}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("export_results", "--study", "ablation", "--format", "csv"),
        ("start_links", "--study", "ablation", "W-1"),
        ("launch_batch", "--variants", "default", "--prompts", "{prompts}"),
    ],
)
def test_a_database_nobody_migrated_gets_told_to_migrate(tmp_path, args):
    # a fresh clone where `make demo` (or `manage.py migrate`) has not run yet
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moves right\n")
    args = tuple(arg.format(prompts=prompts) for arg in args)
    result = _manage(*args, database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "python manage.py migrate" in result.stderr


def test_a_database_that_does_not_answer_is_named_without_a_traceback():
    # nothing listens on port 9 (discard): the command says which database it could not reach
    result = _manage(
        "export_results", "--study", "ablation", "--format", "csv",
        database_url="postgres://nobody@127.0.0.1:9/none?connect_timeout=2",
    )  # fmt: skip

    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "127.0.0.1:9" in result.stderr and "cannot reach" in result.stderr
