"""The site's URLs plus a trivial view: the framework's ceiling for benchmarks/bench_load.py.

Mounted only by the benchmark (ROOT_URLCONF=evalsite.bench_urls in the server's environment),
never in production.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from evalsite.urls import urlpatterns as site_urlpatterns


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/ping/", ping, name="bench-ping"), *site_urlpatterns]
