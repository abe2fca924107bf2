from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings

from . import api

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
    path("studies/<slug:slug>/next/", api.NextAssignment.as_view(), name="next"),
    path("judgments/", api.JudgmentListCreate.as_view(), name="judgments"),
    path("comparisons/", api.ComparisonList.as_view(), name="comparisons"),
    path("raters/me/", api.RaterMe.as_view(), name="me"),
]
