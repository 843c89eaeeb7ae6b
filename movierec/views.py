"""Site-wide views: the health check."""
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """JSON state of what the site depends on; 200 when it can serve, 503 when it cannot."""
    checks = {"database": _database_state()}
    ok = checks["database"] == "up"
    return JsonResponse({"status": "ok" if ok else "down", "checks": checks}, status=200 if ok else 503)


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "up"
    except Exception:  # any driver error means the database cannot serve
        return "down"
