"""Load and latency of rating under gunicorn on PostgreSQL, against a trivial view in the same run.

Phase 1 (realistic): N simulated raters rate a study of M comparisons for T minutes over HTTP,
with realistic watch and decision times, fetching both clips with range requests, spread over
several client processes; a prober asks a trivial Django view about 20 times a second at the
same time (it measures the load, it should not add to it). Reports requests/s and p50/p95/p99
of next-assignment, submit and the trivial view under that load.
Phase 2 (ceiling): closed loops with no waiting, same server, same client concurrency: the
trivial view alone, then a signed-in no-op API view (session, user and profile loaded: the
fixed cost of any rater's request), then a signed-in plain view that commits one row write
(the floor of any design that records a claim or a judgment), then the rating round trip
(next + submit) alone. Rating over trivial is the share of the framework's ceiling that rating
keeps (target ≥ 50%, p99 < 100 ms); the reference views' own ratios show how much of that
signing in and one committed write alone cost, and rating over the one-write view is the share
of the floor that rating keeps (target ≥ 0.6). CPU per request is reported by process
(gunicorn, PostgreSQL, Redis, the load generator), since all share the machine's cores.
Afterwards the database is checked: every 2xx-accepted judgment present once, no comparison
assigned to more raters than the study asks for.

Full size (make bench): 200 raters, 10 minutes, 5,000 comparisons. Smaller:
    python benchmarks/bench_load.py --raters 50 --minutes 2
Needs PostgreSQL at --pg (a database named --database is dropped and recreated).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raters.simulation import (  # noqa: E402
    Behaviour,
    SimulatedAccount,
    SimulationReport,
    percentile,
    run_simulation,
    start_button,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--comparisons", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--ceiling-seconds", type=float, default=20.0)
    parser.add_argument(
        "--ceiling-rounds",
        type=int,
        default=3,
        help="the ceiling loops take turns this many times, --ceiling-seconds each in all",
    )
    parser.add_argument("--ceiling-concurrency", type=int, default=8)
    parser.add_argument("--wait-scale", type=float, default=1.0)
    parser.add_argument(
        "--probe-pause",
        type=float,
        default=0.05,
        help="phase 1's prober waits this long between requests (0: a closed loop, which "
        "added more load than the raters)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="phase 1's raters are spread over this many load-generator processes",
    )
    parser.add_argument(
        "--arrival-spread",
        type=float,
        default=30.0,
        help="seconds over which the raters arrive (0: all at the same instant)",
    )
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="juice_eval_bench_load")
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/14",
        help="DJANGO_CACHE_URL of the site, as in production (flushed first); '' for none",
    )
    return parser.parse_args()


# --- client processes (spawned: they import no Django) ----------------------------------------


def _ping_loop(url: str, seconds: float, threads: int, pause: float = 0.0) -> list[float]:
    """Ask the trivial view in `threads` loops for `seconds`, `pause` s between requests."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        mine: list[float] = []
        with requests.Session() as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = http.get(url, timeout=30)
                mine.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
                if pause:
                    time.sleep(pause)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def _signed_in_loop(
    base_url: str, slug: str, accounts: list[SimulatedAccount], seconds: float, view: str
) -> list[float]:
    """Signed-in ceilings: each client arrives through the study's start link, then asks a
    reference `view` (`bench/me/`: session, user and profile, nothing else; `bench/write/`: the
    same plus one committed write) in a closed loop."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(account: SimulatedAccount) -> None:
        mine: list[float] = []
        with requests.Session() as http:
            start, params = f"{base_url}rate/start/{slug}/", account.start_params()
            page = http.get(start, params=params, timeout=30)
            arrived = http.post(start, params=params, timeout=30, **start_button(http, page.url))
            assert arrived.status_code < 400, arrived.status_code
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = http.get(base_url + view, timeout=30)
                mine.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(a,)) for a in accounts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def _realistic_loop(
    base_url: str,
    slug: str,
    accounts: list[SimulatedAccount],
    seconds: float,
    wait_scale: float,
    arrival_spread: float,
    first: float,
) -> SimulationReport:
    """Phase 1's raters of one client process; they arrive from `first` s into the spread."""
    time.sleep(first)
    return run_simulation(
        base_url=base_url,
        study_slug=slug,
        accounts=accounts,
        behaviour=Behaviour(wait_scale=wait_scale),
        concurrency=len(accounts),
        duration_s=seconds - first,
        arrival_spread_s=max(0.0, arrival_spread - first),
    )


def _rate_loop(
    base_url: str, slug: str, accounts: list[SimulatedAccount], seconds: float
) -> tuple[list[float], list[float], list[str], list[str]]:
    report = run_simulation(
        base_url=base_url,
        study_slug=slug,
        accounts=accounts,
        behaviour=Behaviour(wait_scale=0.0, fetch_media=False, noise=0.3),
        concurrency=len(accounts),
        duration_s=seconds,
    )
    errors = [e for r in report.results for e in r.errors]
    return report.latencies("next"), report.latencies("submit"), report.accepted, errors


@dataclass
class _Ceiling:
    """One ceiling loop's results over its rounds: per client process, the seconds it ran and
    the CPU seconds each process group spent. `rating`: the round trip's loop, whose results are
    (next latencies, submit latencies, ...) per process."""

    rating: bool = False
    results: list = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, results: list, seconds: float, cpu: dict[str, float]) -> float:
        """Count one round in; the requests per second it served."""
        self.results.extend(results)
        self.seconds += seconds
        for group, used in cpu.items():
            self.cpu[group] = self.cpu.get(group, 0.0) + used
        if self.rating:
            served = sum(len(part[0]) + len(part[1]) for part in results)
        else:
            served = sum(len(part) for part in results)
        return served / seconds

    def parts(self) -> tuple[list, float, dict[str, float]]:
        return self.results, self.seconds, self.cpu


def _split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def _fmt(name: str, values: list[float], seconds: float) -> str:
    values = sorted(values)
    if not values:
        return f"  {name:<22} no requests"
    return (
        f"  {name:<22} n={len(values):>6}  {len(values) / seconds:7.1f}/s  "
        f"p50={percentile(values, 50) * 1000:6.1f} ms  p95={percentile(values, 95) * 1000:6.1f} ms"
        f"  p99={percentile(values, 99) * 1000:6.1f} ms"
    )


# --- the run ------------------------------------------------------------------------------------


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

    from raters.simulation import create_simulated_raters
    from tests.system.servers import (
        build_bulk_study,
        cpu_seconds,
        family,
        processes_named,
        start_gunicorn,
    )

    media = Path(tempfile.mkdtemp(prefix="bench-load-media-"))
    log = media / "gunicorn.log"
    t0 = time.monotonic()
    call_command("migrate", verbosity=0)
    study = build_bulk_study(
        comparisons=args.comparisons, slug="load", media_root=media, gold_rate=0.0
    )
    ceiling_study = build_bulk_study(
        comparisons=args.comparisons,
        slug="ceiling",
        media_root=media,
        min_watch_ms=0,
        gold_rate=0.0,
        mirror_rate=0.0,
    )
    accounts = create_simulated_raters(study=study, count=args.raters, careless_share=0.1)
    ceiling_accounts = create_simulated_raters(
        study=ceiling_study, count=args.ceiling_concurrency * 4, careless_share=0.0
    )
    with connections["default"].cursor() as cursor:
        # Planner statistics for the bulk-loaded tables, as autovacuum would gather them.
        cursor.execute("ANALYZE")
    connections.close_all()
    print(
        f"setup: {args.comparisons} comparisons x2 studies, {args.raters} raters, "
        f"{time.monotonic() - t0:.1f} s; gunicorn {args.workers} workers x {args.threads} "
        f"threads, {os.cpu_count()} CPUs, cache {args.cache_url or 'per process'}"
    )

    extra_env = {}
    if args.cache_url:
        import redis

        redis.Redis.from_url(args.cache_url).flushdb()
        extra_env["DJANGO_CACHE_URL"] = args.cache_url
    site = start_gunicorn(
        db_url=db_url,
        media_root=media,
        log=log,
        workers=args.workers,
        threads=args.threads,
        extra_env=extra_env,
    )
    spawn = multiprocessing.get_context("spawn")
    try:
        # Phase 1: realistic raters plus a light prober on the trivial view.
        # The raters are spread over client processes, as 200 browsers are not 200 threads
        # sharing one interpreter lock (whose waits the latencies would count).
        seconds = args.minutes * 60
        procs = max(1, min(args.client_processes, args.raters))
        crowds = _split(accounts, procs)
        with spawn.Pool(len(crowds) + 1) as pool:
            probe = pool.apply_async(
                _ping_loop, (site.url + "bench/ping/", seconds, 1, args.probe_pause)
            )
            parts = [
                pool.apply_async(
                    _realistic_loop,
                    (
                        site.url,
                        study.slug,
                        group,
                        seconds,
                        args.wait_scale,
                        args.arrival_spread,
                        # Interleaved arrivals: account i of all arrives at spread * i / N.
                        args.arrival_spread * index / len(accounts),
                    ),
                )
                for index, group in enumerate(crowds)
            ]
            reports = [part.get() for part in parts]
            ping_latencies = probe.get()
        report = SimulationReport(
            results=[r for part in reports for r in part.results],
            seconds=max(part.seconds for part in reports),
        )
        print(
            f"\nphase 1: {args.raters} raters for {args.minutes:g} min (realistic waits, "
            f"arriving over {args.arrival_spread:g} s, {len(crowds)} client processes)"
        )
        print("  " + report.summary().replace("\n", "\n  "))
        print(_fmt("trivial view (probe)", ping_latencies, report.seconds))

        # Phase 2: ceilings, same concurrency, client split over two processes.
        procs = 2
        per_proc = max(1, args.ceiling_concurrency // procs)
        server_pids = family(site.process.pid)
        clients = per_proc * procs
        me_ids = ceiling_accounts[clients : 2 * clients]
        write_ids = ceiling_accounts[2 * clients : 3 * clients]
        ids = ceiling_accounts[:clients]
        with spawn.Pool(procs) as pool:
            groups = {
                "gunicorn": lambda: server_pids,
                "PostgreSQL": lambda: processes_named("postgres"),
                "Redis": lambda: processes_named("redis-server"),
                "load generator": lambda: [p.pid for p in pool._pool],  # type: ignore[attr-defined]
            }

            def cpu_by_process() -> dict[str, dict[int, float]]:
                return {g: {p: cpu_seconds([p]) for p in pids()} for g, pids in groups.items()}

            def measured(loop, argsets):  # type: ignore[no-untyped-def]
                """Run `loop` in every client process; (results, seconds, CPU s per group).
                A process started during the loop (a new database backend) counts from zero."""
                before = cpu_by_process()
                started = time.monotonic()
                results = pool.starmap(loop, argsets)
                seconds = time.monotonic() - started
                used = {
                    g: sum(cpu - before[g].get(p, 0.0) for p, cpu in now.items())
                    for g, now in cpu_by_process().items()
                }
                return results, seconds, used

            # The four loops take turns, `--ceiling-rounds` times: the ratios compare loops
            # that ran under the same conditions on a machine whose speed drifts.
            rounds = max(1, args.ceiling_rounds)
            slice_s = args.ceiling_seconds / rounds
            runs = {
                "trivial": (_ping_loop, [(site.url + "bench/ping/", slice_s, per_proc)] * procs),
                "no-op": (
                    _signed_in_loop,
                    [
                        (site.url, ceiling_study.slug, p, slice_s, "bench/me/")
                        for p in _split(me_ids, procs)
                    ],
                ),
                "one write": (
                    _signed_in_loop,
                    [
                        (site.url, ceiling_study.slug, p, slice_s, "bench/write/")
                        for p in _split(write_ids, procs)
                    ],
                ),
                "rating": (
                    _rate_loop,
                    [(site.url, ceiling_study.slug, p, slice_s) for p in _split(ids, procs)],
                ),
            }
            totals = {name: _Ceiling(rating=name == "rating") for name in runs}
            per_round: list[float] = []
            for _round in range(rounds):
                served = {}
                for name, (loop, argsets) in runs.items():
                    served[name] = totals[name].add(*measured(loop, argsets))
                per_round.append(served["rating"] / served["one write"])
        parts, ping_s, ping_cpu = totals["trivial"].parts()
        signed_in, me_s, me_cpu = totals["no-op"].parts()
        wrote, write_s, write_cpu = totals["one write"].parts()
        rated, rate_s, rate_cpu = totals["rating"].parts()
        ping_all = [x for part in parts for x in part]
        me_all = [x for part in signed_in for x in part]
        write_all = [x for part in wrote for x in part]
        nexts = [x for part in rated for x in part[0]]
        submits = [x for part in rated for x in part[1]]
        ceiling_accepted = [t for part in rated for t in part[2]]
        ceiling_errors = [e for part in rated for e in part[3]]
        ping_rps = len(ping_all) / ping_s
        me_rps = len(me_all) / me_s
        write_rps = len(write_all) / write_s
        rate_rps = (len(nexts) + len(submits)) / rate_s
        print(f"\nphase 2: closed loops, {per_proc * procs} clients, no waiting")
        print(_fmt("trivial view", ping_all, ping_s))
        print(_fmt("signed-in no-op view", me_all, me_s))
        print(_fmt("signed-in one write", write_all, write_s))
        print(_fmt("next assignment", nexts, rate_s))
        print(_fmt("submit", submits, rate_s))
        print(
            f"  rating requests/s {rate_rps:.1f} vs trivial {ping_rps:.1f}: "
            f"ratio {rate_rps / ping_rps:.2f} (target >= 0.50); "
            f"round trips/s {len(submits) / rate_s:.1f}"
        )
        print(
            f"  signed-in no-op {me_rps:.1f}/s vs trivial: ratio {me_rps / ping_rps:.2f} "
            f"(what any signed-in request keeps); rating vs signed-in no-op: "
            f"{rate_rps / me_rps:.2f}"
        )
        print(
            f"  signed-in one write (plain Django view, one committed UPDATE: the floor of any "
            f"rating design) {write_rps:.1f}/s vs trivial: ratio {write_rps / ping_rps:.2f}"
        )
        print(
            f"  rating vs the one-write floor: {rate_rps / write_rps:.2f} (target >= 0.60; "
            "each is a request/s rate in this run); round by round: "
            + ", ".join(f"{r:.2f}" for r in per_round)
        )
        # CPU per request, by process group: where the shared machine's cores went. Web-server
        # CPU does not depend on how busy the machine or the load generator are.
        print("  CPU per request (ms)      " + "".join(f"{g:>16}" for g in groups))
        for label, used, n in (
            ("trivial", ping_cpu, len(ping_all)),
            ("signed-in no-op", me_cpu, len(me_all)),
            ("signed-in one write", write_cpu, len(write_all)),
            ("rating (next or submit)", rate_cpu, len(nexts) + len(submits)),
        ):
            cells = "".join(f"{used[g] * 1000 / max(n, 1):16.2f}" for g in groups)
            print(f"    {label:<24}{cells}")
        rating_p99 = percentile(sorted(nexts + submits), 99) * 1000
        print(f"  rating p99 {rating_p99:.1f} ms (target < 100 ms)")
        if ceiling_errors:
            print(f"  ceiling errors: {ceiling_errors[:3]}")
    finally:
        if site.process.poll() is None:
            site.kill()

    # After the run, from the database.
    problems = check_database(
        accepted=report.accepted + ceiling_accepted, studies=[study, ceiling_study]
    )
    print(
        "\ndatabase after the run:",
        "; ".join(problems) if problems else "none lost, none over-assigned, none twice",
    )
    server_errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    print(f"server tracebacks in log: {len(server_errors)} ({log})")
    return 1 if problems else 0


def check_database(*, accepted: list[str], studies: list) -> list[str]:
    from django.db.models import Count, F, Q

    from raters.models import Assignment, Comparison, Judgment

    problems = []
    found = set(
        str(t)
        for t in Judgment.objects.filter(assignment__token__in=accepted).values_list(
            "assignment__token", flat=True
        )
    )
    missing = [t for t in accepted if t not in found]
    if missing:
        problems.append(f"{len(missing)} accepted judgments missing")
    if len(set(accepted)) != len(accepted):
        problems.append("a token was accepted twice by the client")
    for study in studies:
        over = (
            Comparison.objects.filter(study=study)
            .annotate(
                held=Count("assignments", filter=~Q(assignments__status=Assignment.Status.EXPIRED))
            )
            .filter(held__gt=F("study__raters_per_pair"))
            .count()
        )
        if over:
            problems.append(f"{over} comparisons of {study.slug} over-assigned")
        judged = (
            Comparison.objects.filter(study=study)
            .annotate(n=Count("assignments__judgment"))
            .filter(n__gt=F("study__raters_per_pair"))
            .count()
        )
        if judged:
            problems.append(f"{judged} comparisons of {study.slug} judged too often")
    total = Judgment.objects.count()
    print(f"\njudgments in the database: {total}; accepted by clients: {len(accepted)}")
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
