"""`export_results` on 1,000,000 judgments in PostgreSQL against PostgreSQL's own COPY, the
dashboard's cold and warm loads, and a gunicorn worker's memory before and after analysis.

Builds a dedicated database (default `juice_eval_bench`, dropped and re-created unless --reuse),
migrates it, bulk-loads a 5-pair study of 40,000 prompts × 5 raters with COPY (fewer prompts for
fewer --judgments), plus a one-pair study of up to 2,000 prompts × 5 raters (10,000 judgments;
as many prompts as the big study has when it has fewer), and runs the real management command
in a fresh process per export. Peak memory is the child's maximum resident set (os.wait4): a
streaming export should use about the same for 10,000 judgments as for 1,000,000. The baseline
is `COPY (the export's query) TO STDOUT WITH CSV` run in the same kind of child process; the
ratio is the export's speed as a share of it. The dashboard rows time `queries.study_summary`
in a fresh process (cold), then again in the same process (warm, from the cache), and the
COPY of the rows it counts, received and dropped in a fresh process: the cold load's floor.
The last lines start gunicorn with one worker and report its resident memory after a page for raters
and after a dashboard request.

    .venv/bin/python benchmarks/bench_export.py [--judgments 1000000] [--database NAME]
        [--reuse] [--keep]

Not part of the test suite; needs the local PostgreSQL server (trust auth).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.frames import REASON_CODES  # noqa: E402
from analysis.synthetic import SimulatedPair, simulate_judgments  # noqa: E402

SERVER = "postgres://postgres@127.0.0.1:5432"
PAIRS = [
    SimulatedPair("factorized", "direct", 0.60, 0.56),
    SimulatedPair("zero-snr", "standard", 0.85, 0.75),
    SimulatedPair("multi-stage", "512-only", 0.70, 0.72),
    SimulatedPair("hq-finetuned", "not-finetuned", 0.57, 0.68),
    SimulatedPair("frozen-spatial", "all-finetuned", 0.52, 0.53),
]
RATERS, RATER_POOL, NOW = 5, 2000, "2026-01-01T00:00:00+00:00"
SMALL_PROMPTS = 2000  # the small study's prompts: 10,000 judgments
FILL = {
    "character varying": "",
    "text": "",
    "integer": 0,
    "bigint": 0,
    "smallint": 0,
    "double precision": 0.0,
    "real": 0.0,
    "boolean": False,
    "timestamp with time zone": NOW,
    "jsonb": "{}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--database", default="juice_eval_bench")
    parser.add_argument("--reuse", action="store_true", help="Keep an already loaded database.")
    parser.add_argument("--keep", action="store_true", help="Do not drop the database at the end.")
    parser.add_argument(
        "--dashboard-only",
        action="store_true",
        help="Time only the dashboard loads (no exports, no gunicorn worker).",
    )
    args = parser.parse_args()
    url = f"{SERVER}/{args.database}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

    small = _small_judgments(args.judgments)
    loaded = args.reuse and _count(url) == args.judgments + small
    if not loaded:
        _recreate(args.database)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)  # a reused database follows new migrations too
    if not loaded:
        started = time.perf_counter()
        _load(url, judgments=args.judgments)
        print(
            f"loaded {_count(url):,} judgments with COPY in {time.perf_counter() - started:.0f} s"
        )

    with tempfile.TemporaryDirectory() as folder:
        print(
            f"{'study':<12} {'what':<10} {'judgments':>10} {'time':>8} {'rows/s':>9} "
            f"{'peak RSS':>9} {'file':>9}"
        )
        for study, n in (("bench-small", small), ("bench", args.judgments)):
            if args.dashboard_only:
                break
            baseline = Path(folder) / f"{study}.copy.csv"
            copy_seconds, peak_kb = _run([sys.executable, "-c", _COPY, study, str(baseline)], url)
            print(
                f"{study:<12} {'raw COPY':<10} {n:>10,} {copy_seconds:>7.1f}s "
                f"{n / copy_seconds:>9,.0f} {peak_kb / 1024:>7.0f}MB "
                f"{baseline.stat().st_size / 2**20:>7.0f}MB"
            )
            for fmt in ("csv", "parquet"):
                out = Path(folder) / f"{study}.{fmt}"
                seconds, peak_kb = _run_export(study, fmt, out, url)
                print(
                    f"{study:<12} {fmt:<10} {n:>10,} {seconds:>7.1f}s {n / seconds:>9,.0f} "
                    f"{peak_kb / 1024:>7.0f}MB {out.stat().st_size / 2**20:>7.0f}MB  "
                    f"{copy_seconds / seconds:.2f} of COPY's speed"
                )
        for study, n in (("bench-small", small), ("bench", args.judgments)):
            seconds, peak_kb, timings = _run_timed([sys.executable, "-c", _DASHBOARD, study], url)
            cold, warm = timings
            _, _, (floor,) = _run_timed([sys.executable, "-c", _DASHBOARD_COPY, study], url)
            print(
                f"{study:<12} {'dashboard':<10} {n:>10,} {cold:>7.2f}s cold, {warm:.3f}s warm, "
                f"peak RSS {peak_kb / 1024:.0f}MB (process {seconds:.1f}s); "
                f"its COPY alone {floor:.2f}s"
            )
    if not args.dashboard_only:
        _worker_memory(url, study="bench-small")
    if not args.keep:
        _drop(args.database)


# A small launcher runs the export and reports its peak RSS: a child forked straight from this
# process would inherit this process's high-water mark (Linux copies it across fork and exec).
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


_DASHBOARD = """
import sys, time, django
django.setup()
from analysis import queries
from raters.models import Study
study = Study.objects.get(slug=sys.argv[1])
for _ in range(2):  # cold, then warm (the cache)
    started = time.perf_counter()
    queries.study_summary(study=study)
    print("TIMING", time.perf_counter() - started, file=sys.stderr)
"""

# The floor of a cold dashboard: PostgreSQL's COPY of the rows the summary is counted from, in
# the binary format the dashboard reads, received and thrown away (no decoding, no counting).
_DASHBOARD_COPY = """
import sys, time, django
django.setup()
from django.db import connection
from analysis import queries
from raters.models import Study
sql, params, _ = queries.summary_sql(study=Study.objects.get(slug=sys.argv[1]))
started = time.perf_counter()
with connection.cursor() as cursor:
    with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", params) as copy:
        for block in copy:
            pass
print("TIMING", time.perf_counter() - started, file=sys.stderr)
"""

_COPY = """
import sys, django
django.setup()
from django.db import connection
from analysis import queries
from raters.models import Study
sql, params = queries.export_sql(study=Study.objects.get(slug=sys.argv[1]))
with open(sys.argv[2], "wb") as out, connection.cursor() as cursor:
    with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        for block in copy:
            out.write(block)
"""

_WORKER_SESSION = """
import sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
with connection.cursor() as cursor:  # users were loaded by COPY with explicit ids
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('auth_user', 'id'), "
        "(SELECT coalesce(max(id), 0) + 1 FROM auth_user), false)"
    )
staff, _ = get_user_model().objects.get_or_create(
    username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
)
session = SessionStore()
session["_auth_user_id"] = str(staff.pk)
session["_auth_user_backend"] = "raters.auth.ProfileBackend"
session["_auth_user_hash"] = staff.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def _run_export(study: str, fmt: str, out: Path, url: str) -> tuple[float, int]:
    command = [
        sys.executable, "manage.py", "export_results", "--study", study, "--format", fmt,
        "--output", str(out),
    ]  # fmt: skip
    return _run(command, url)


def _run(command: list[str], url: str) -> tuple[float, int]:
    seconds, peak_kb, _ = _child(_LAUNCHER, command, url)
    return seconds, peak_kb


def _run_timed(command: list[str], url: str) -> tuple[float, int, list[float]]:
    """`_run`, plus the TIMING lines the child printed to stderr."""
    return _child(_LAUNCHER_STDERR, command, url)


def _child(launcher: str, command: list[str], url: str) -> tuple[float, int, list[float]]:
    """Run `command` under `launcher` on database `url`: its wall time, peak memory (KB) and
    the TIMING figures the launcher relayed (none for `_LAUNCHER`)."""
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", launcher, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    lines = result.stdout.split("\n")
    code, peak_kb = (int(v) for v in lines[-2].split())
    if code:
        raise SystemExit(f"{command[1:4]} failed: {result.stderr[-2000:]}")
    timings = [float(line.split()[1]) for line in lines if line.startswith("TIMING")]
    return seconds, peak_kb, timings


_LAUNCHER_STDERR = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
for line in child.stderr:
    if line.startswith(b"TIMING"):
        print(line.decode().strip())
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _worker_memory(url: str, *, study: str) -> None:
    """One gunicorn worker's resident memory: started, after a rater page, after analysis."""
    import requests
    from django.conf import settings

    from tests.system.servers import family, start_gunicorn

    # the key start_gunicorn gives the server (this process's): the session must verify there
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SECRET_KEY": str(settings.SECRET_KEY)}
    made = subprocess.run(
        [sys.executable, "-c", _WORKER_SESSION],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "benchmarks.site_settings"},
        capture_output=True,
        text=True,
    )
    if made.returncode:
        raise SystemExit(f"could not sign a staff user in: {made.stderr[-2000:]}")
    key = made.stdout.strip()
    media = Path(tempfile.mkdtemp(prefix="bench-export-media-"))
    site = start_gunicorn(db_url=url, media_root=media, log=media / "gunicorn.log", workers=1)
    try:
        worker = family(site.process.pid)[-1]

        def rss() -> float:
            for line in Path(f"/proc/{worker}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            return float("nan")

        def loaded() -> str:
            maps = Path(f"/proc/{worker}/maps").read_text()
            heavy = ("pandas", "scipy", "plotly")
            return ", ".join(name for name in heavy if f"/{name}/" in maps) or "none"

        cookie = {"Cookie": f"sessionid={key}"}
        requests.get(site.url + "rate/", timeout=60)
        print(f"gunicorn worker after a rater page: {rss():.0f} MB (heavy libraries: {loaded()})")
        page = requests.get(
            site.url + f"staff/analysis/{study}/",
            headers=cookie,
            timeout=300,
            allow_redirects=False,
        )
        if page.status_code != 200:
            raise SystemExit(f"the dashboard answered HTTP {page.status_code}, not 200")
        print(
            f"gunicorn worker after a dashboard (HTTP {page.status_code}): {rss():.0f} MB "
            f"(heavy libraries: {loaded()})"
        )
    finally:
        site.kill()


def _recreate(database: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')


def _drop(database: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _count(url: str) -> int:
    try:
        with psycopg.connect(url) as connection:
            return int(connection.execute("SELECT count(*) FROM raters_judgment").fetchone()[0])
    except psycopg.Error:
        return -1


def _prompts(judgments: int) -> int:
    return judgments // (len(PAIRS) * RATERS)


def _small_judgments(judgments: int) -> int:
    """The small study: one pair, 2,000 prompts × 5 raters, or all the big study's prompts."""
    return min(SMALL_PROMPTS, _prompts(judgments)) * RATERS


def _load(url: str, *, judgments: int) -> None:
    prompts = _prompts(judgments)
    big = simulate_judgments(
        pairs=PAIRS, prompts=prompts, raters=RATERS, rater_pool=RATER_POOL, seed=0
    )
    small = simulate_judgments(
        pairs=PAIRS[:1], prompts=_small_judgments(judgments) // RATERS, raters=RATERS, seed=1
    )
    variants = sorted({p.variant_a for p in PAIRS} | {p.variant_b for p in PAIRS})
    variant_id = {name: k + 1 for k, name in enumerate(variants)}
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        users = np.arange(1, RATER_POOL + 1)
        _copy(
            cursor,
            "auth_user",
            pd.DataFrame(
                {
                    "id": users,
                    "password": "!",
                    "username": [f"bench{u}" for u in users],
                    "is_superuser": False,
                    "is_staff": False,
                    "is_active": True,
                    "date_joined": NOW,
                }
            ),
        )
        _copy(
            cursor,
            "raters_rater",
            pd.DataFrame(
                {
                    "id": users,
                    "user_id": users,
                    "external_id": [f"P{u}" for u in users],
                    "is_simulated": False,
                    "is_flagged": users <= 40,
                    "created_at": NOW,
                }
            ),
        )
        _copy(
            cursor,
            "generation_modelvariant",
            pd.DataFrame(
                {
                    "id": list(variant_id.values()),
                    "name": variants,
                    "slug": variants,
                    "version": 1,
                    "config": "{}",
                    "created_at": NOW,
                }
            ),
        )
        _copy(
            cursor,
            "generation_promptset",
            pd.DataFrame({"id": [1], "name": "bench", "slug": "bench", "created_at": NOW}),
        )
        prompt_ids = np.arange(1, prompts + 1)
        _copy(
            cursor,
            "generation_prompt",
            pd.DataFrame(
                {
                    "id": prompt_ids,
                    "prompt_set_id": 1,
                    "external_id": prompt_ids.astype(str),
                    "text": [
                        f"prompt {p}: a red panda climbs a tree in the rain" for p in prompt_ids
                    ],
                }
            ),
        )
        _copy(
            cursor,
            "generation_generationbatch",
            pd.DataFrame(
                {
                    "id": [1],
                    "name": "bench",
                    "prompt_set_id": 1,
                    "seeds": 1,
                    "status": "done",
                    "created_at": NOW,
                }
            ),
        )
        # one job and one video per (variant, prompt): id = (variant - 1) * prompts + prompt
        v = np.repeat(np.arange(1, len(variants) + 1), prompts)
        p = np.tile(prompt_ids, len(variants))
        ids = (v - 1) * prompts + p
        _copy(
            cursor,
            "generation_generationjob",
            pd.DataFrame(
                {
                    "id": ids,
                    "batch_id": 1,
                    "variant_id": v,
                    "prompt_id": p,
                    "seed": 0,
                    "status": "done",
                    "queued_at": NOW,
                }
            ),
        )
        rng = np.random.default_rng(0)
        scores = [json.dumps({"faithfulness": round(float(s), 4)}) for s in rng.random(len(ids))]
        _copy(
            cursor,
            "generation_video",
            pd.DataFrame(
                {
                    "id": ids,
                    "job_id": ids,
                    "file": [f"videos/{i}.mp4" for i in ids],
                    "frames": 8,
                    "fps": 4,
                    "width": 64,
                    "height": 64,
                    "seconds_spent": 1.0,
                    "scores": scores,
                    "created_at": NOW,
                }
            ),
        )
        _copy(
            cursor,
            "raters_study",
            pd.DataFrame(
                {
                    "id": [1, 2],
                    "name": ["Bench", "Bench small"],
                    "slug": ["bench", "bench-small"],
                    "raters_per_pair": RATERS,
                    "allow_ties": False,
                    "is_active": True,
                    "created_at": NOW,
                }
            ),
        )
        _copy(
            cursor,
            "raters_study_batches",
            pd.DataFrame({"id": [1, 2], "study_id": [1, 2], "generationbatch_id": 1}),
        )
        pair_rows = [
            (k + 1, 1, variant_id[x.variant_a], variant_id[x.variant_b])
            for k, x in enumerate(PAIRS)
        ]
        pair_rows.append((len(PAIRS) + 1, 2, *pair_rows[0][2:]))
        _copy(
            cursor,
            "raters_variantpair",
            pd.DataFrame(pair_rows, columns=["id", "study_id", "variant_a_id", "variant_b_id"]),
        )
        offset = 0
        for study, frame, first_pair in ((1, big, 1), (2, small, len(PAIRS) + 1)):
            offset = _load_study(cursor, frame, study, first_pair, variant_id, prompts, offset)
        cursor.execute("ANALYZE")


def _load_study(cursor, frame, study, first_pair, variant_id, prompts, offset):  # type: ignore[no-untyped-def]
    comparisons = frame.drop_duplicates("comparison_id")
    comparison_ids = comparisons["comparison_id"].to_numpy() + offset
    pair_index = pd.factorize(comparisons["pair"])[0]
    prompt = comparisons["prompt_id"].to_numpy()
    video_a = (comparisons["variant_a"].map(variant_id).to_numpy() - 1) * prompts + prompt
    video_b = (comparisons["variant_b"].map(variant_id).to_numpy() - 1) * prompts + prompt
    _copy(
        cursor,
        "raters_comparison",
        pd.DataFrame(
            {
                "id": comparison_ids,
                "study_id": study,
                "pair_id": first_pair + pair_index,
                "kind": "real",
                "prompt_id": prompt,
                "video_a_id": video_a,
                "video_b_id": video_b,
                "created_at": NOW,
            }
        ),
    )
    ids = frame["judgment_id"].to_numpy() + offset * RATERS
    stamps = frame["judged_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    _copy(
        cursor,
        "raters_assignment",
        pd.DataFrame(
            {
                "id": ids,
                "comparison_id": frame["comparison_id"].to_numpy() + offset,
                "rater_id": frame["rater"].astype(int).to_numpy() + 1,
                # The comparison's study, kind and prompt, which assignments carry.
                "study_id": study,
                "kind": "real",
                "prompt_id": frame["prompt_id"].to_numpy(),
                "token": [str(uuid.uuid4()) for _ in range(len(frame))],
                "left_is_a": frame["left_is_a"].to_numpy(),
                "status": "done",
                "created_at": stamps,
            }
        ),
    )
    reasons = {q: _reason_json(frame[f"{q}_reasons"], q) for q in ("quality", "faithfulness")}
    _copy(
        cursor,
        "raters_judgment",
        pd.DataFrame(
            {
                "id": ids,
                "assignment_id": ids,
                "quality": frame["quality"].to_numpy(),
                "quality_reasons": reasons["quality"],
                "faithfulness": frame["faithfulness"].to_numpy(),
                "faithfulness_reasons": reasons["faithfulness"],
                "time_spent_ms": frame["time_spent_ms"].to_numpy(),
                "watch_ms": frame["time_spent_ms"].to_numpy() // 2,
                "replays": 1,
                "seeks": 0,
                "is_flagged": frame["rater"].astype(int).to_numpy() < 40,
                "is_simulated": False,
                "created_at": stamps,
            }
        ),
    )
    return offset + int(comparison_ids.max())


def _reason_json(masks: pd.Series, question: str) -> np.ndarray:
    codes = REASON_CODES[question]
    lookup = {
        int(m): json.dumps([c for bit, c in enumerate(codes) if (int(m) >> bit) & 1])
        for m in masks.unique()
    }
    return masks.map(lookup).to_numpy()


def _copy(cursor, table: str, frame: pd.DataFrame, chunk: int = 200_000) -> None:  # type: ignore[no-untyped-def]
    """COPY a frame in; NOT NULL columns the frame lacks get a neutral value of their type."""
    cursor.execute(
        "SELECT column_name, data_type, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_name = %s",
        [table],
    )
    for name, data_type, nullable, default, identity in cursor.fetchall():
        if name in frame or nullable == "YES" or default is not None or identity == "YES":
            continue
        frame[name] = str(uuid.uuid4()) if data_type == "uuid" else FILL[data_type]
    columns = ", ".join(frame.columns)
    sql = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with cursor.copy(sql) as copy:
        for start in range(0, len(frame), chunk):
            buffer = io.StringIO()
            part = frame.iloc[start : start + chunk]
            part.to_csv(buffer, index=False, header=False, na_rep="\\N")
            copy.write(buffer.getvalue())


if __name__ == "__main__":
    main()
