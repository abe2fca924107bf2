"""Clip delivery: Django streaming against nginx X-Accel-Redirect, on this machine, in one run.

Three ways to serve the same 4 MB clip of a rater's own assignment (raters.views.clip), each
under the same concurrent range-request load (whole file with `Range: bytes=0-`, then 1 MB
slices):
  1. gunicorn alone, the view streaming the file in 64 KB chunks;
  2. nginx in front of that gunicorn (what a plain proxy setup gives);
  3. nginx in front of a gunicorn with JUICE_MEDIA_ACCEL_PREFIX set: the view answers
     X-Accel-Redirect (evalsite.accel) and nginx sends the file itself with sendfile
     (docs/production.md has the configuration).
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
{servers}
}}
"""
SERVER = """
    upstream app{port} {{ server 127.0.0.1:{app_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location /_protected_media/ {{
            internal;
            alias {media}/;
        }}
        location / {{
            proxy_pass http://app{port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"""


def start_nginx(
    tmp: Path, media: Path, app_ports: list[int]
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """One nginx, one front port per gunicorn."""
    import requests

    from tests.system.servers import free_port

    ports = [free_port() for _ in app_ports]
    servers = "".join(
        SERVER.format(port=port, app_port=app_port, media=media)
        for port, app_port in zip(ports, app_ports, strict=True)
    )
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, servers=servers))
    process = subprocess.Popen(
        [shutil.which("nginx") or "nginx", "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    fronts = [f"http://127.0.0.1:{port}/" for port in ports]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            for front in fronts:
                requests.get(front + "bench/ping/", timeout=5)
            return process, fronts
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
                response = http.get(url, headers={"Range": header}, timeout=60, stream=True)
                # Every 8th body is checked byte for byte; the rest only counted, so the client
                # spends as little CPU as it can (it shares the machine with the servers).
                if n % 8 == 1:
                    body = response.content
                    size = len(body)
                    ok = body == expected[start : end + 1]
                else:
                    size = sum(len(c) for c in response.iter_content(1 << 20))
                    ok = size == end - start + 1
                mine.append(time.perf_counter() - began)
                got += size
                if response.status_code != 206 or not ok:
                    with lock:
                        wrong.append(f"{response.status_code} {header} {size} bytes")
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
    from tests.system.servers import build_bulk_study, cpu_seconds, family, start_gunicorn

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

    server = dict(db_url=db_url, media_root=media, workers=args.workers)
    site = start_gunicorn(log=tmp / "gunicorn.log", **server)
    accel_site = start_gunicorn(
        log=tmp / "gunicorn-accel.log",
        extra_env={"JUICE_MEDIA_ACCEL_PREFIX": "/_protected_media/"},
        **server,
    )
    nginx = None
    try:
        modes = [("gunicorn, Django streaming", site.url + f"rate/clip/{path}")]
        if shutil.which("nginx"):
            check_hand_off(accel_site.url + f"rate/clip/{path}", token)
            ports = [int(s.url.rstrip("/").rsplit(":", 1)[1]) for s in (site, accel_site)]
            nginx, (front, accel_front) = start_nginx(tmp, media, ports)
            modes += [
                ("nginx -> Django streaming", front + f"rate/clip/{path}"),
                ("nginx X-Accel-Redirect", accel_front + f"rate/clip/{path}"),
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
            # Server CPU: the gunicorn behind this mode, plus nginx when it is in front.
            app = accel_site if "X-Accel" in name else site
            pids = family(app.process.pid) + (family(nginx.pid) if "nginx" in name else [])
            cpu_before = cpu_seconds(pids)
            results[name] = r = load(url, token, clip, args.seconds, args.concurrency)
            r["cpu_ms"] = (cpu_seconds(pids) - cpu_before) * 1000 / max(r["n"], 1)
            print(
                f"  {name:<28} {r['rps']:7.1f} req/s {r['mbps']:8.1f} MB/s  "
                f"p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
                f"server CPU {r['cpu_ms']:5.1f} ms/request  wrong answers: {len(r['wrong'])}"
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
            cpu_stream = results["nginx -> Django streaming"]["cpu_ms"]
            cpu_accel = results["nginx X-Accel-Redirect"]["cpu_ms"]
            print(
                f"  server CPU per request, proxied streaming / X-Accel-Redirect: "
                f"{cpu_stream / max(cpu_accel, 1e-9):.2f}x"
            )
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
        accel_site.kill()


def check_hand_off(url: str, token: str) -> None:
    """The clip view, asked directly, must answer with X-Accel-Redirect and no body."""
    import requests

    response = requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=30)
    if "X-Accel-Redirect" not in response.headers or response.content:
        raise SystemExit(
            "raters.views.clip does not hand off to nginx with JUICE_MEDIA_ACCEL_PREFIX set "
            f"(answered {response.status_code}, {len(response.content)} bytes)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
