"""The site's URLs plus two reference views, mounted by evalsite.bench_settings only.

For benchmarks/bench_load.py: `bench/ping/` is the framework's ceiling (no database, no
session); `bench/me/` is the ceiling of any signed-in API call (DRF, session, user and profile
loaded, nothing else), the fixed cost every rating request pays before its own work.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.urls import urlpatterns as site_urlpatterns


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


class Me(APIView):  # type: ignore[misc]  # DRF ships no type hints
    def get(self, request: Request) -> Response:
        return Response({"id": request.user.pk, "qualified": request.user.rater.is_qualified})


urlpatterns = [
    path("bench/ping/", ping, name="bench-ping"),
    path("bench/me/", Me.as_view(), name="bench-me"),
    *site_urlpatterns,
]
