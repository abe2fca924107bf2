from django.urls import path

from . import views

app_name = "raters"

urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:slug>/", views.rate, name="rate"),
    path(
        "clip/<str:token>/<str:side>/<str:kind>",
        views.clip,
        name="clip",
    ),
]
