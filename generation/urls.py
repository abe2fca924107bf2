from django.urls import path

from . import views

app_name = "generation"

urlpatterns = [
    path("", views.launch, name="launch"),
    path("variants/", views.variants, name="variants"),
    path("imports/", views.import_upload, name="import"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("batches/<int:pk>/progress.json", views.batch_progress, name="batch-progress"),
    path("batches/<int:pk>/<slug:action>/", views.batch_action, name="batch-action"),
]
