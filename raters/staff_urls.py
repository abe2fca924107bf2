from django.urls import path

from . import staff_views

app_name = "studies"

urlpatterns = [
    path("", staff_views.index, name="index"),
    path("new/", staff_views.new, name="new"),
    path("clip/<int:video_id>/<str:kind>", staff_views.clip, name="clip"),
    path("<slug:slug>/", staff_views.detail, name="detail"),
    path("<slug:slug>/progress.json", staff_views.progress, name="progress"),
    path("<slug:slug>/bonus.csv", staff_views.pay_file, name="pay-file"),
    path("<slug:slug>/completed.csv", staff_views.completion_file, name="completion-file"),
    path("<slug:slug>/judgments.<str:fmt>", staff_views.export, name="export"),
    path("<slug:slug>/<slug:action>/", staff_views.action, name="action"),
]
