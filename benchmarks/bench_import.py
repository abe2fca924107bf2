"""Import speed against raw ffmpeg, measured side by side in one run (Redis + PostgreSQL).

Makes `--clips` clips of mixed sizes, frame rates and lengths (as other systems deliver them),
then prints videos per second for:
- raw ffmpeg: the same files transcoded by the ffmpeg binary that imageio-ffmpeg ships, with
  the platform's delivery settings (H.264 yuv420p, CRF 18, +faststart, no audio, a PNG poster),
  one process per file in a pool of `--workers` processes;
- the platform: `import_videos` on a manifest (every file decoded once to check it), then
  `--workers` real Celery workers on the `default` queue transcoding and recording each video,
  until the last one is recorded.
The target is a ratio of at least 0.8.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/juice_eval \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \\
    .venv/bin/python benchmarks/bench_import.py [--clips 500] [--workers 2]

It creates and drops its own database (<name>_bench_import) next to DATABASE_URL's.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# (width, height, fps, frames): toy renders, API outputs, a lab's release.
FORMATS = [(256, 256, 4, 8), (480, 720, 8, 49), (320, 240, 24, 48), (512, 288, 16, 33)]


def make_clips(folder: Path, count: int) -> list[tuple[Path, str]]:
    from tests.generation.clips import make_clip

    clips = []
    tasks = []
    for i in range(count):
        width, height, fps, frames = FORMATS[i % len(FORMATS)]
        path = folder / f"clip{i}.mp4"
        tasks.append((path, width, height, fps, frames, i))
        clips.append((path, f"a red circle moves left, take {i}"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(
            pool.map(
                lambda t: make_clip(
                    t[0], width=t[1], height=t[2], fps=t[3], frames=t[4], seed=t[5]
                ),
                tasks,
            )
        )
    return clips


def raw_ffmpeg_rate(clips: list[tuple[Path, str]], workers: int, out: Path) -> float:
    """Videos per second of ffmpeg alone, transcoding each file as the platform delivers it."""
    from tests.generation.clips import ffmpeg

    out.mkdir(exist_ok=True)

    def transcode(index_clip: tuple[int, tuple[Path, str]]) -> None:
        index, (path, _) = index_clip
        command = [
            ffmpeg(), "-y", "-loglevel", "error", "-i", str(path), "-an",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-movflags", "+faststart",
            str(out / f"{index}.mp4"), "-frames:v", "1", str(out / f"{index}.png"),
        ]  # fmt: skip
        subprocess.run(command, check=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(transcode, enumerate(clips)))
    return len(clips) / (time.perf_counter() - started)


def platform_rate(clips: list[tuple[Path, str]], workers: int, folder: Path, media: Path) -> float:
    from generation import imports, selectors, services
    from tests.generation import workers as w

    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "prompt"])
        writer.writerows((path.name, prompt) for path, prompt in clips)
    variant = services.register_variant(name="Bench import", config={"kind": "imported"}).variant
    prompt_set = services.get_or_create_prompt_set(
        name="bench import", prompts=[prompt for _, prompt in clips]
    )
    names = [f"import{i}" for i in range(workers)]
    w.reset_broker()
    with w.running_workers(names, media_root=media, queues="default"):
        w.wait_for_workers(names)
        started = time.perf_counter()
        report = imports.import_videos(variant=variant, prompt_set=prompt_set, manifest=manifest)
        assert report.written and report.batch is not None, [f for f in report.files][:3]
        counts = selectors.follow_batch(
            batch=report.batch, on_progress=lambda c: None, poll_s=0.2, timeout_s=3600
        )
        seconds = time.perf_counter() - started
    if counts["done"] != len(clips):
        raise RuntimeError(f"the import did not complete: {counts}")
    return len(clips) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("CELERY_BROKER_URL", "").startswith(
        "redis"
    ):
        sys.exit("Set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… (see --help).")
    from benchmarks.bench_scheduling import bench_database_url, recreate_database

    bench_url, admin_url, name = bench_database_url(url)
    name = name.replace("_bench_scheduling", "_bench_import")
    bench_url = bench_url.replace("_bench_scheduling", "_bench_import")
    recreate_database(admin_url, name)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder, media = Path(tmp) / "clips", Path(tmp) / "media"
        folder.mkdir()
        os.environ["MEDIA_ROOT"] = str(media)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        try:
            started = time.perf_counter()
            clips = make_clips(folder, args.clips)
            print(
                f"{len(clips)} clips of {len(FORMATS)} formats made in "
                f"{time.perf_counter() - started:.0f} s; {args.workers} workers"
            )
            raw = raw_ffmpeg_rate(clips, args.workers, Path(tmp) / "raw")
            platform = platform_rate(clips, args.workers, folder, media)
        finally:
            from django.db import connections

            connections.close_all()
            recreate_database(admin_url, name, drop_only=True)
    print(f"raw ffmpeg, {args.workers} processes: {raw:.2f} videos/s")
    print(f"platform (check + transcode + record), {args.workers} workers: {platform:.2f} videos/s")
    print(f"ratio {platform / raw:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
