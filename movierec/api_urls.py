"""The REST API under /api/v1/: each app contributes its own routes."""
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes

from movierec import views


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "down"])
    checks = serializers.DictField(child=serializers.CharField(), help_text="State of each dependency.")


@extend_schema(
    summary="Whether the site can serve",
    description="200 with status ok when the database is up; 503 with status down when it is not. Redis and "
    "the recommendation model are reported without failing the check.",
    responses={200: HealthSerializer, 503: HealthSerializer},
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
@throttle_classes([])
def health(request):
    """The site's health check (movierec.views.healthz), under the API."""
    return views.healthz(request._request)


urlpatterns = [
    path("", include("catalog.api")),
    path("", include("recommendations.api")),
    path("", include("accounts.api")),
    path("", include("recommendations.group_api")),
    path("health/", health, name="api-health"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads its start-up script from a URL, so the docs need no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
