"""The site's URLs plus reference views, mounted by benchmarks.site_settings only (not deployed).

For benchmarks/bench_load.py: `bench/ping/` is the framework's ceiling (no database, no
session); `bench/me/` is the ceiling of any signed-in API call (DRF, session, user and profile
loaded, nothing else), the fixed cost every rating request pays before its own work;
`bench/write/` is a plain Django view that commits one row write for the signed-in user (a
GET, harmless: it sets last_login to itself), the least that any request recording a claim or
a judgment must do.
"""

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.urls import urlpatterns as site_urlpatterns


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


class Me(APIView):
    def get(self, request: Request) -> Response:
        rater = request.user.rater  # type: ignore[union-attr]  # signed in: IsAuthenticated
        return Response({"id": request.user.pk, "qualified": rater.is_qualified})


def one_write(request: HttpRequest) -> HttpResponse:
    """The floor of any rating design in Django: a signed-in request (plain view, no DRF) that
    commits one row write, as a judgment or a claim must."""
    if not request.user.is_authenticated:
        return HttpResponse(status=403)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auth_user SET last_login = last_login WHERE id = %s", [request.user.pk]
        )
    return HttpResponse(b'{"ok":true}', content_type="application/json")


urlpatterns = [
    path("bench/ping/", ping, name="bench-ping"),
    path("bench/me/", Me.as_view(), name="bench-me"),
    path("bench/write/", one_write, name="bench-write"),
    *site_urlpatterns,
]
