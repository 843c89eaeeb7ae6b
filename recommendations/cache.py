"""Per-user recommendation lists cached in Redis, keyed by model version.

Layout (all through the "recommendations" cache alias, so the same code runs on locmem without
Redis; unlike the fail-open default alias it raises when Redis is down, which is how the code
below notices an outage):
- ``rec:version`` — the pointer: id of the version whose lists readers use ("none" = no model).
- ``rec:v<version>:u<user_id>`` — one user's top-N, a list of plain dicts; expires after
  RECOMMENDER_CACHE_TTL, so lists of versions no longer pointed to simply age out.
- ``rec:stats:last_warm`` — when the last warm ran, for which version, how many lists.
Hit/miss counters live in Redis directly (atomic INCR).

A publish writes every list of the new version first and then switches the pointer with one
SET, so a reader sees either the complete old set or the complete new one. When Redis cannot
be reached, reads are computed in process and one warning is logged per outage.
"""
import logging
import time
from datetime import datetime, timezone as dt_timezone
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.utils.connection import ConnectionProxy
from kombu.exceptions import OperationalError as BrokerError

from catalog.models import Movie
from recommendations import selectors

logger = logging.getLogger(__name__)

POINTER_KEY = "rec:version"
LAST_WARM_KEY = "rec:stats:last_warm"
FIRST_FIT_KEY = "rec:first-fit-requested"
HITS_KEY = "rec:stats:hits"
MISSES_KEY = "rec:stats:misses"
NO_MODEL = "none"
# After a failure, skip Redis for this long instead of paying a connect timeout per request.
RETRY_AFTER_SECONDS = 5.0

CACHE_ALIAS = "recommendations"
cache = ConnectionProxy(caches, CACHE_ALIAS)

REDIS_ERRORS = (redis.exceptions.RedisError, OSError, BrokerError)

_down_until = 0.0
_outage_logged = False


def list_key(version: str, user_id: int) -> str:
    return f"rec:v{version}:u{user_id}"


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)


def redis_client() -> redis.Redis | None:
    """A raw client on the Redis behind the recommendation cache, or None when it is not Redis."""
    config = settings.CACHES[CACHE_ALIAS]
    if config["BACKEND"] != f"{RedisCache.__module__}.{RedisCache.__qualname__}":
        return None
    location = config["LOCATION"]
    return _client_for(location[0] if isinstance(location, (list, tuple)) else location)


def redis_available() -> bool:
    """False while a recent Redis failure is being waited out."""
    return time.monotonic() >= _down_until


def mark_redis_down(error: Exception) -> None:
    """Remember an outage for a few seconds and log it once (not once per request)."""
    global _down_until, _outage_logged
    _down_until = time.monotonic() + RETRY_AFTER_SECONDS
    if not _outage_logged:
        logger.warning("Redis is unreachable (%s): recommendations are computed in process until it is back.", error)
        _outage_logged = True


def _mark_redis_up() -> None:
    global _outage_logged
    if _outage_logged:
        logger.info("Redis is reachable again: recommendations are cached again.")
    _outage_logged = False


def redis_state() -> str:
    """"up", "down", or "not configured" (locmem cache, no Redis in this deployment)."""
    client = redis_client()
    if client is None:
        return "not configured"
    try:
        client.ping()
    except REDIS_ERRORS:
        return "down"
    return "up"


def current_version_pointer() -> str:
    """The version readers use. Rebuilt from the database if Redis lost it (e.g. a flush)."""
    pointer = cache.get(POINTER_KEY)
    if pointer is None:
        pointer = _published_version_id()
        cache.add(POINTER_KEY, pointer, timeout=None)
    return pointer


def _published_version_id() -> str:
    from recommendations.models import ModelVersion

    version_id = ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
    return str(version_id) if version_id else NO_MODEL


def switch_pointer(version_id) -> None:
    """Point readers at version_id's lists in one SET."""
    cache.set(POINTER_KEY, str(version_id) if version_id else NO_MODEL, timeout=None)


def serialize(recommendations) -> list[dict]:
    return [
        {
            "movie_id": rec.movie.pk,
            "score": float(rec.score),
            "predicted_stars": None if rec.predicted_stars is None else float(rec.predicted_stars),
            "explanation": rec.explanation,
        }
        for rec in recommendations
    ]


def deserialize(payload: list[dict]):
    """Rebuild Recommendation objects in cached order (movies deleted since are dropped)."""
    movies = Movie.objects.in_bulk([item["movie_id"] for item in payload])
    return [
        selectors.Recommendation(
            movie=movies[item["movie_id"]],
            score=item["score"],
            predicted_stars=item["predicted_stars"],
            explanation=item["explanation"],
        )
        for item in payload
        if item["movie_id"] in movies
    ]


def store_recommendations(version: str, user_id: int, recommendations) -> None:
    cache.set(list_key(version, user_id), serialize(recommendations), timeout=settings.RECOMMENDER_CACHE_TTL)


def store_many(version: str, lists: dict[int, list]) -> None:
    """Write several users' lists of one version (one round trip)."""
    cache.set_many(
        {list_key(version, user_id): serialize(recs) for user_id, recs in lists.items()},
        timeout=settings.RECOMMENDER_CACHE_TTL,
    )


def record_warm(version, count: int, seconds: float) -> None:
    cache.set(
        LAST_WARM_KEY,
        {"at": time.time(), "version": str(version), "lists": count, "seconds": round(seconds, 3)},
        timeout=None,
    )


def _count(key: str) -> None:
    client = redis_client()
    if client is not None:
        client.incr(cache.make_key(key))


def get_recommendations(user, n: int = 20):
    """The user's top-n recommendations: from Redis, or computed (and stored) on a miss.

    Never fails because of Redis: when it is unreachable the list is computed in process.
    On a fresh install with no model, the popularity fallback is served and a first fit is
    requested (once).
    """
    if not user.is_authenticated:
        return selectors.recommend_for_user(user, n=n)
    if not redis_available():
        return selectors.recommend_for_user(user, n=n)
    try:
        version = current_version_pointer()
        payload = cache.get(list_key(version, user.pk))
        if payload is not None:
            _count(HITS_KEY)
        else:
            _count(MISSES_KEY)
        _mark_redis_up()
    except REDIS_ERRORS as error:
        mark_redis_down(error)
        return selectors.recommend_for_user(user, n=n)

    if payload is not None and (len(payload) >= n or len(payload) < settings.RECOMMENDER_CACHE_TOP_N):
        recommendations = deserialize(payload[:n])
        if recommendations or not payload:
            return recommendations

    recommendations = selectors.recommend_for_user(user, n=max(n, settings.RECOMMENDER_CACHE_TOP_N))
    try:
        store_recommendations(version, user.pk, recommendations)
        if version == NO_MODEL:
            request_first_fit_once()
    except REDIS_ERRORS as error:
        mark_redis_down(error)
    return recommendations[:n]


def request_first_fit_once() -> None:
    """On an install with no model version at all, enqueue the first fit (at most once an hour).

    Not when tasks run in process (no Redis): a visitor's page must not wait for a fit; staff
    start it from the model page there.
    """
    from celery import current_app

    from recommendations.models import ModelVersion
    from recommendations.tasks import request_refit

    if current_app.conf.task_always_eager or ModelVersion.objects.exists():
        return
    if cache.add(FIRST_FIT_KEY, time.time(), timeout=3600):
        logger.info("No recommendation model yet: enqueueing the first fit.")
        request_refit(reason="first fit on a fresh install")


def cache_status() -> dict:
    """What the staff model page shows: pointer, cached lists of it, hit ratio, last warm."""
    status = {"redis": redis_state(), "version": None, "keys": None, "hits": 0, "misses": 0, "hit_ratio": None}
    status["last_warm"] = status["last_warm_at"] = None
    if status["redis"] == "down":
        return status
    try:
        status["version"] = current_version_pointer()
        status["last_warm"] = cache.get(LAST_WARM_KEY)
        if status["last_warm"]:
            status["last_warm_at"] = datetime.fromtimestamp(status["last_warm"]["at"], tz=dt_timezone.utc)
        client = redis_client()
        if client is not None:
            pattern = cache.make_key(list_key(status["version"], 0)).removesuffix("0") + "*"
            status["keys"] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
            hits, misses = client.mget(cache.make_key(HITS_KEY), cache.make_key(MISSES_KEY))
            status["hits"], status["misses"] = int(hits or 0), int(misses or 0)
            total = status["hits"] + status["misses"]
            status["hit_ratio"] = status["hits"] / total if total else None
    except REDIS_ERRORS:
        status["redis"] = "down"
    return status
