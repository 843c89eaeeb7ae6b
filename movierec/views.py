"""Site-wide views: the health check."""
from django.db import connection
from django.http import JsonResponse


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
