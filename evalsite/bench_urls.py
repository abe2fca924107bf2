"""The site's URLs plus a trivial view, mounted by evalsite.bench_settings only.

`bench/ping/` is the framework's ceiling for benchmarks/bench_load.py: no database, no template.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from evalsite.urls import urlpatterns as site_urlpatterns


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/ping/", ping, name="bench-ping"), *site_urlpatterns]
