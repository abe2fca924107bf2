from django.urls import path

from . import views

app_name = "raters"

urlpatterns = [
    path("", views.home, name="home"),
    path("start/<slug:slug>/", views.start, name="start"),
    path("clip/<uuid:token>/<str:side>/<str:kind>", views.clip, name="clip"),
    path("<slug:slug>/", views.rate, name="rate"),
    path("<slug:slug>/instructions/", views.instructions, name="instructions"),
    path("<slug:slug>/quiz/", views.take_quiz, name="quiz"),
    path("<slug:slug>/done/", views.done, name="done"),
]
