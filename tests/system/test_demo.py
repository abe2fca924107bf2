"""`make demo` end to end on the embedded defaults: real worker process, real checkpoints.

Runs `manage.py demo --no-serve` twice in a fresh var/ folder: the first run generates every
video through Celery and builds the study; the second reuses all of it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from evalsite import demo

pytestmark = pytest.mark.slow

COUNTS = {
    "videos": "SELECT COUNT(*) FROM generation_video",
    "jobs": "SELECT COUNT(*) FROM generation_generationjob",
    "batches": "SELECT COUNT(*) FROM generation_generationbatch",
    "variants": "SELECT COUNT(*) FROM generation_modelvariant",
    "studies": "SELECT COUNT(*) FROM raters_study",
    "comparisons": "SELECT COUNT(*) FROM raters_comparison",
    "gold": "SELECT COUNT(*) FROM raters_comparison WHERE kind = 'gold'",
    "users": "SELECT COUNT(*) FROM auth_user",
}


def _run_demo(var: Path) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_BROKER_DIR", "MEDIA_ROOT")
    }
    env["JUICE_VAR_DIR"] = str(var)
    done = subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def _counts(var: Path) -> dict[str, int]:
    with sqlite3.connect(var / "juice.sqlite3") as db:
        return {name: db.execute(sql).fetchone()[0] for name, sql in COUNTS.items()}


def test_demo_builds_a_study_from_real_videos_and_a_second_run_duplicates_nothing(tmp_path):
    var = tmp_path / "var"
    out = _run_demo(var)
    videos = len(demo.PROMPTS) * len(demo.VARIANTS)
    assert f"{videos} videos ready, 0 failed" in out
    assert f"{demo.RATER[0]} / {demo.RATER[1]}" in out and f"{demo.ADMIN[0]} / " in out
    first = _counts(var)
    assert first["videos"] == first["jobs"] == videos
    assert first["studies"] == 1 and first["variants"] == 2 and first["users"] == 2
    assert first["comparisons"] == len(demo.PROMPTS) + first["gold"] and first["gold"] == 4
    with sqlite3.connect(var / "juice.sqlite3") as db:  # interpolated: 29 frames at 16 fps
        assert db.execute("SELECT DISTINCT frames, fps FROM generation_video").fetchall() == [
            (29, 16)
        ]
    mp4s = sorted((var / "media").rglob("*.mp4"))
    assert len(mp4s) >= videos and all(p.stat().st_size > 1000 for p in mp4s)

    _run_demo(var)
    assert _counts(var) == first
