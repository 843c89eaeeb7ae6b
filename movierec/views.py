"""Site-wide views: the health check and the Prometheus metrics."""
import os

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse


def healthz(request):
    """JSON state of what the site depends on; 200 when it can serve, 503 when it cannot.

    Only the database is essential: without Redis the site still serves (computed in process),
    so Redis "down" is reported but keeps the status 200.
    """
    checks = {"database": _database_state()}
    ok = checks["database"] == "up"
    checks["redis"] = _redis_state()
    checks["model"] = _model_state() if ok else "unknown"
    return JsonResponse({"status": "ok" if ok else "down", "checks": checks}, status=200 if ok else 503)


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "up"
    except Exception:  # any driver error means the database cannot serve
        return "down"


def _redis_state() -> str:
    from recommendations.cache import redis_state

    return redis_state()


def _model_state() -> str:
    """Id of the published model version, or "none" (visitors get popularity)."""
    from recommendations.models import ModelVersion

    version_id = ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
    return str(version_id) if version_id else "none"


def metrics(request):
    """Prometheus metrics, for staff and for the addresses in METRICS_ALLOWED_IPS (the scraper)."""
    import ipaddress

    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    from movierec.observability import SiteCollector

    user = getattr(request, "user", None)
    allowed = user is not None and user.is_staff
    if not allowed:
        client = ipaddress.ip_address(_client_address(request))
        allowed = any(client in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_IPS)
    if not allowed:
        return HttpResponse("Metrics are for staff and the monitoring addresses in METRICS_ALLOWED_IPS.\n",
                            status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    site = CollectorRegistry()
    site.register(SiteCollector())
    return HttpResponse(generate_latest(processes) + generate_latest(site), content_type=CONTENT_TYPE_LATEST)


def _client_address(request) -> str:
    """The connecting address, or behind TRUSTED_PROXY_COUNT proxies the one they received."""
    if settings.TRUSTED_PROXY_COUNT:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= settings.TRUSTED_PROXY_COUNT:
            return forwarded[-settings.TRUSTED_PROXY_COUNT]
    return request.META["REMOTE_ADDR"]
