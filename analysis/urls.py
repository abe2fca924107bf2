from django.urls import path

from . import views

app_name = "analysis"

urlpatterns = [
    path("", views.index, name="index"),
    path("plotly.min.js", views.plotly_js, name="plotly-js"),
    path("<slug:study_slug>/", views.dashboard, name="dashboard"),
    path("<slug:study_slug>/data.json", views.dashboard_data, name="dashboard-data"),
    path("<slug:study_slug>/ablation-table.csv", views.table_csv, name="table-csv"),
]
