"""Clip delivery: Django streaming against nginx X-Accel-Redirect, on this machine, in one run.

Three ways to serve the same 4 MB clip of a rater's own assignment, each under the same
concurrent range-request load (whole file with `Range: bytes=0-`, then 1 MB slices):
  1. gunicorn alone, the clip view streaming the file in 64 KB chunks (raters.views.clip);
  2. nginx in front of gunicorn, the same streaming view (what a plain proxy setup gives);
  3. nginx in front of gunicorn, the view answering X-Accel-Redirect (evalsite.accel) so nginx
     sends the file itself with sendfile (docs/production.md has the configuration).
Reports requests/s, MB/s, p50/p99, that every answer was 206 with the right bytes, and the
gunicorn workers' memory after the run (streaming must not read whole files into memory).

nginx is needed for 2 and 3: on Debian `apt-get install nginx-light` (or nginx). Without it the
benchmark runs 1 only and says so. Needs PostgreSQL at --pg (database --database is recreated).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIP_BYTES = 4 * 1024 * 1024
SLICE = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per mode")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="juice_eval_bench_video")
    return parser.parse_args()


NGINX_CONF = """
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
daemon off;
user root;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/client;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream django {{ server 127.0.0.1:{app_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location /_protected_media/ {{
            internal;
            alias {media}/;
        }}
        location / {{
            proxy_pass http://django;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def start_nginx(tmp: Path, media: Path, app_port: int) -> tuple[subprocess.Popen[bytes], str]:
    from tests.system.servers import free_port

    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, media=media, app_port=app_port, port=port))
    process = subprocess.Popen(
        [shutil.which("nginx") or "nginx", "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    import requests

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/bench/ping/", timeout=5)
            return process, f"http://127.0.0.1:{port}/"
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError((tmp / "nginx-error.log").read_text()[-2000:])


def load(url: str, token: str, expected: bytes, seconds: float, threads: int) -> dict:
    import requests

    lock = threading.Lock()
    latencies: list[float] = []
    moved = [0]
    wrong: list[str] = []
    deadline = time.monotonic() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        got = 0
        with requests.Session() as http:
            http.headers["Authorization"] = f"Token {token}"
            n = 0
            while time.monotonic() < deadline:
                if n % 2 == 0:
                    start, end = 0, len(expected) - 1
                    header = "bytes=0-"
                else:
                    start = rng.randrange(0, len(expected) - SLICE)
                    end = start + SLICE - 1
                    header = f"bytes={start}-{end}"
                n += 1
                began = time.perf_counter()
                response = http.get(url, headers={"Range": header}, timeout=60)
                body = response.content
                mine.append(time.perf_counter() - began)
                got += len(body)
                if response.status_code != 206 or body != expected[start : end + 1]:
                    with lock:
                        wrong.append(f"{response.status_code} {header} {len(body)} bytes")
        with lock:
            latencies.extend(mine)
            moved[0] += got

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "mbps": moved[0] / elapsed / 1e6,
        "p50": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "wrong": wrong,
    }


def worker_rss_mb(arbiter_pid: int) -> list[float]:
    """Resident memory of each gunicorn worker (children of the arbiter), in MB."""
    sizes = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(arbiter_pid):
            sizes.append(int(fields.get("VmRSS", "0 kB").split()[0]) / 1024)
    return sorted(sizes)


def main() -> int:
    args = parse_args()
    from tests.system.servers import recreate_database

    db_url = recreate_database(args.pg, args.database)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from generation.models import Video
    from raters.models import Assignment, Comparison, Rater
    from tests.system.servers import build_bulk_study, start_gunicorn

    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    tmp.chmod(0o755)
    media = tmp / "media"
    call_command("migrate", verbosity=0)
    study = build_bulk_study(comparisons=1, pairs=1, slug="video", media_root=media)
    clip = random.Random(0).randbytes(CLIP_BYTES)
    (media / "videos" / "big.mp4").write_bytes(clip)
    Video.objects.all().update(file="videos/big.mp4")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="viewer")
    Rater.objects.create(user=user, qualified_at=django.utils.timezone.now())
    token = Token.objects.create(user=user).key
    assignment = Assignment.objects.create(
        comparison=Comparison.objects.get(study=study), rater=user, left_is_a=True
    )
    connections.close_all()
    path = f"{assignment.token}/left/video"

    site = start_gunicorn(
        db_url=db_url, media_root=media, log=tmp / "gunicorn.log", workers=args.workers
    )
    app_port = int(site.url.rstrip("/").rsplit(":", 1)[1])
    nginx = None
    try:
        modes = [("gunicorn, Django streaming", site.url + f"rate/clip/{path}")]
        if shutil.which("nginx"):
            nginx, front = start_nginx(tmp, media, app_port)
            modes += [
                ("nginx -> Django streaming", front + f"rate/clip/{path}"),
                ("nginx X-Accel-Redirect", front + f"bench/accel-clip/{path}"),
            ]
        else:
            print("nginx is not installed (apt-get install nginx-light): X-Accel-Redirect skipped")
        print(
            f"{CLIP_BYTES // 2**20} MB clip, {args.concurrency} clients x {args.seconds:g} s per "
            f"mode, half whole-file ranges, half 1 MB slices; gunicorn {args.workers} workers; "
            f"{os.cpu_count()} CPUs"
        )
        # Every worker answers a few small requests first, so the baseline includes imports.
        import requests

        for _ in range(4 * args.workers):
            requests.get(site.url + "bench/ping/", timeout=30)
        rss_before = worker_rss_mb(site.process.pid)
        results = {}
        for name, url in modes:
            results[name] = r = load(url, token, clip, args.seconds, args.concurrency)
            print(
                f"  {name:<28} {r['rps']:7.1f} req/s {r['mbps']:8.1f} MB/s  "
                f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  wrong answers: {len(r['wrong'])}"
            )
        rss = worker_rss_mb(site.process.pid)
        print(
            f"  gunicorn worker RSS: {max(rss_before):.0f} MB before, {max(rss):.0f} MB after "
            f"(a {CLIP_BYTES // 2**20} MB clip read whole per request would show here)"
        )
        if len(results) == 3:
            stream = results["nginx -> Django streaming"]["mbps"]
            accel = results["nginx X-Accel-Redirect"]["mbps"]
            print(f"  X-Accel-Redirect / proxied streaming throughput: {accel / stream:.2f}x")
        bad = [name for name, r in results.items() if r["wrong"] or not r["n"]]
        if bad:
            print(f"wrong or no answers in: {bad}: {[results[b]['wrong'][:2] for b in bad]}")
            return 1
        return 0
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=20)
        site.kill()


if __name__ == "__main__":
    raise SystemExit(main())
