"""URLs of "Bring your history" (Letterboxd / IMDb import, Letterboxd export)."""
from django.urls import path

from catalog import history_views

app_name = "history"

urlpatterns = [
    path("import/", history_views.upload, name="upload"),
    path("import/<int:pk>/", history_views.preview, name="preview"),
    path("import/<int:pk>/confirm/", history_views.confirm, name="confirm"),
    path("import/<int:pk>/status/", history_views.status, name="status"),
    path("import/<int:pk>/progress.json", history_views.progress, name="progress"),
    path("export/letterboxd.csv", history_views.export_letterboxd, name="export"),
]
