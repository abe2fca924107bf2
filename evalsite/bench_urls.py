"""The site's URLs plus benchmark-only views, mounted by evalsite.bench_settings only.

`bench/ping/` is a trivial view: the framework's ceiling for benchmarks/bench_load.py.
`bench/accel-clip/…` is the rater clip view answered with X-Accel-Redirect (evalsite.accel),
for benchmarks/bench_video_delivery.py to compare with Django streaming.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from evalsite import accel
from evalsite.urls import urlpatterns as site_urlpatterns
from raters import selectors


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def accel_clip(request: HttpRequest, token: str, side: str, kind: str) -> HttpResponse:
    from rest_framework.authentication import TokenAuthentication

    found = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    user = found[0] if found else request.user
    if not user.is_authenticated:
        return HttpResponse("Log in first.", status=403, content_type="text/plain")
    assignment = selectors.assignment_for_rater(token=token, rater=user)
    if assignment is None or side not in ("left", "right") or kind not in ("video", "poster"):
        raise Http404
    field = selectors.clip_file(assignment=assignment, side=side, kind=kind)
    if field is None:
        raise Http404
    return accel.accel_response(field, "video/mp4" if kind == "video" else "image/png")


urlpatterns = [
    path("bench/ping/", ping, name="bench-ping"),
    path("bench/accel-clip/<uuid:token>/<str:side>/<str:kind>", accel_clip, name="bench-accel"),
    *site_urlpatterns,
]
