"""What operators see: one log line per request (JSON in production) and Prometheus metrics.

- RequestLogMiddleware gives each request an id (the caller's X-Request-ID when it looks like
  one, else a new one; echoed in the response), logs one line when it ends (request id, user
  id, view, status, duration) and observes the request-latency histogram by view.
- RequestContextFilter puts the request id and user id on every log record made while the
  request runs, so JSON lines from deeper code can be joined to their request.
- SiteCollector reads, at scrape time, what is the same for every process of the deployment:
  recommendation cache hits and misses (counters in Redis), Redis state, the Celery queue
  length, model versions by outcome and the last refit's duration (from the database).
  Request latency is per process; under gunicorn prometheus-client's multiprocess mode adds
  the workers up (deploy/gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR).
"""
import contextvars
import logging
import re
import time
import uuid

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger("movierec.requests")

_request_context: contextvars.ContextVar[dict] = contextvars.ContextVar("movierec_request", default={})
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REQUEST_SECONDS = Histogram(
    "movierec_request_duration_seconds",
    "Time to answer a request, by view (URL name), method and status class.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestContextFilter(logging.Filter):
    """Adds request_id and user_id (None outside a request) to every record."""

    def filter(self, record):
        context = _request_context.get()
        record.request_id = context.get("request_id")
        record.user_id = context.get("user_id")
        return True


def _user_id(request):
    """The signed-in user's id, without loading a user the view never needed."""
    user = request.__dict__.get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.pk if user.is_authenticated else None


def _view_name(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or "<unnamed>"
    return "static" if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")) else "<unmatched>"


class RequestLogMiddleware:
    """First in MIDDLEWARE: request id, one log line and the latency histogram per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        token = _request_context.set({"request_id": request_id})
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            view, user_id = _view_name(request), _user_id(request)
            _request_context.set({"request_id": request_id, "user_id": user_id})
            REQUEST_SECONDS.labels(view, request.method, f"{response.status_code // 100}xx").observe(seconds)
            logger.log(
                logging.DEBUG if view == "static" else logging.INFO,
                "%s %s %s %.1fms", request.method, request.path, response.status_code, seconds * 1000,
                extra={"method": request.method, "path": request.path, "view": view,
                       "status": response.status_code, "duration_ms": round(seconds * 1000, 2)},
            )
            response["X-Request-ID"] = request_id
            return response
        finally:
            _request_context.reset(token)


class SiteCollector:
    """Deployment-wide figures read from Redis and the database when /metrics is scraped."""

    def collect(self):
        from celery import current_app
        from django.db.models import Count

        from movierec.cache_backends import REDIS_ERRORS, breaker, redis_guard
        from recommendations import cache
        from recommendations.models import ModelVersion, PendingRefresh

        redis_up = cache.redis_state() == "up"
        yield GaugeMetricFamily("movierec_redis_up", "1 when Redis answers this process (cache, broker).",
                                value=int(redis_up))
        yield GaugeMetricFamily("movierec_redis_breaker_open",
                                "1 while this process skips Redis after a failure (circuit breaker).",
                                value=int(breaker.is_open))
        client = cache.redis_client()
        if redis_up and client is not None:
            try:
                with redis_guard():
                    hits, misses = client.mget(cache.cache.make_key(cache.HITS_KEY), cache.cache.make_key(cache.MISSES_KEY))
                    queue = current_app.conf.task_default_queue
                    # kombu keeps one list per priority step; the plain name holds the default priority.
                    queued = sum(client.llen(name) for name in [queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))])
                last_warm = cache.cache.get(cache.LAST_WARM_KEY)
            except REDIS_ERRORS:
                pass
            else:
                yield CounterMetricFamily("movierec_recommendation_cache_hits", "Personal lists read from Redis.",
                                          value=int(hits or 0))
                yield CounterMetricFamily("movierec_recommendation_cache_misses",
                                          "Personal lists computed because Redis had none.", value=int(misses or 0))
                yield GaugeMetricFamily("movierec_celery_queue_length", "Tasks waiting in the Celery queue.",
                                        value=queued)
                if last_warm:
                    yield GaugeMetricFamily("movierec_last_warm_seconds",
                                            "Time the latest publish took to warm every active user's list.",
                                            value=last_warm["seconds"])

        by_status = GaugeMetricFamily("movierec_model_versions", "Model versions by outcome of their refit.",
                                      labels=["status"])
        counts = dict(ModelVersion.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in ModelVersion.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        last = ModelVersion.objects.exclude(status=ModelVersion.Status.TRAINING).order_by("-created_at").first()
        if last is not None:
            yield GaugeMetricFamily("movierec_last_refit_seconds", "Training time of the latest finished refit.",
                                    value=last.train_seconds)
            yield GaugeMetricFamily("movierec_last_refit_timestamp_seconds", "When the latest finished refit started.",
                                    value=last.created_at.timestamp())
        current = ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
        yield GaugeMetricFamily("movierec_serving_model_version", "Id of the model version being served (0: none).",
                                value=current or 0)
        yield GaugeMetricFamily("movierec_pending_refreshes", "Users whose cached list waits for a refresh.",
                                value=PendingRefresh.objects.count())
