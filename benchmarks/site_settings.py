"""Settings for benchmarks and system tests: production behaviour over plain local HTTP.

DEBUG comes from the environment as usual (the benchmark sets DJANGO_DEBUG=0). Only the TLS
parts are relaxed, because the load generator talks plain HTTP to 127.0.0.1: secure cookies
would never be sent back. The trivial view of benchmarks.site_urls is the framework's ceiling.
"""

from evalsite.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.site_urls"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
