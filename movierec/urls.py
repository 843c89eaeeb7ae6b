from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from movierec import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("movierec.api_urls")),
    path("", include("catalog.urls")),
    path("", include("catalog.history_urls")),
    path("", include("recommendations.onboarding_urls")),
    path("", include("accounts.taste_urls")),
]
# Stored posters (MEDIA_ROOT) in development; in production the web server or a storage backend serves them.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Unknown addresses under /api/ answer with the API's JSON error body.
handler404 = "movierec.api.not_found"
