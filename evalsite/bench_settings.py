"""Settings for benchmarks/bench_load.py only: the site plus a trivial view (bench_urls)."""

from evalsite.settings import *  # noqa: F403

ROOT_URLCONF = "evalsite.bench_urls"
