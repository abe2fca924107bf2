from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings

from . import api, api_plain

app_name = "api"

urlpatterns = [
    # The token view names its own parsers: give it the site's (nesting-limited JSON) ones.
    path(
        "auth/token/",
        ObtainAuthToken.as_view(parser_classes=api_settings.DEFAULT_PARSER_CLASSES),
        name="token",
    ),
    # The schema lists routes, not data, but no one outside needs it: signed-in users only.
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="schema",
    ),
    path("studies/", api.StudyList.as_view(), name="studies"),
    path("studies/<slug:slug>/", api.StudyDetail.as_view(), name="study"),
    # The rating page's two POSTs skip DRF's request machinery (raters.api_plain).
    path(
        "studies/<slug:slug>/next/",
        api_plain.rating_post(api.NextAssignment.as_view(), api_plain.next_task),
        name="next",
    ),
    path(
        "judgments/",
        api_plain.rating_post(api.JudgmentListCreate.as_view(), api_plain.submit),
        name="judgments",
    ),
    path("comparisons/", api.ComparisonList.as_view(), name="comparisons"),
    path("raters/me/", api.RaterMe.as_view(), name="me"),
]
