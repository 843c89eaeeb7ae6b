from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.conf.urls.static import static as media_urlpatterns
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from movierec import views

# Staff sign in through allauth's login, with its failed-login rate limit, like everyone else;
# the admin's own login form (which has no limit) is never shown.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = admin.site.site_title = "movierec administration"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on every page that names no icon (the admin, JSON answers).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"))),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("movierec.api_urls")),
    path("", include("catalog.urls")),
    path("", include("catalog.history_urls")),
    path("", include("recommendations.onboarding_urls")),
    path("", include("accounts.taste_urls")),
    path("", include("recommendations.group_urls")),
]
# Stored posters (MEDIA_ROOT) in development; in production the web server or a storage backend serves them.
urlpatterns += media_urlpatterns(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Errors under /api/ answer with the API's JSON error body; elsewhere with the site's own pages.
handler400 = "movierec.api.bad_request"
handler403 = "movierec.api.permission_denied"
handler404 = "movierec.api.not_found"
handler500 = "movierec.api.server_error"
