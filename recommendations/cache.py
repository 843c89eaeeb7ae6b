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
import hashlib
import json
import logging
import pickle
import time
from datetime import datetime, timezone as dt_timezone
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.db.models import prefetch_related_objects
from django.utils.connection import ConnectionProxy

from catalog.models import Movie, NotInterested, Rating
from movierec.cache_backends import REDIS_ERRORS, GuardedRedisCache, breaker, redis_guard
from recommendations import experiments, selectors, trending

logger = logging.getLogger(__name__)

POINTER_KEY = "rec:version"
LAST_WARM_KEY = "rec:stats:last_warm"
FIRST_FIT_KEY = "rec:first-fit-requested"
HITS_KEY = "rec:stats:hits"
MISSES_KEY = "rec:stats:misses"
NO_MODEL = "none"

CACHE_ALIAS = "recommendations"
cache = ConnectionProxy(caches, CACHE_ALIAS)


def list_key(version: str, user_id: int) -> str:
    return f"rec:v{version}:u{user_id}"


@lru_cache(maxsize=4)
def _client_for(url: str, timeout: float) -> redis.Redis:
    # No retries: one REDIS_TIMEOUT is all a caller waits (redis.Redis would retry 3 times).
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))


def redis_client() -> redis.Redis | None:
    """A raw client on the Redis behind the recommendation cache, or None when it is not Redis.

    Use it inside ``redis_guard()`` so an outage trips the shared circuit breaker.
    """
    config = settings.CACHES[CACHE_ALIAS]
    if config["BACKEND"] != f"{GuardedRedisCache.__module__}.{GuardedRedisCache.__qualname__}":
        return None
    location = config["LOCATION"]
    return _client_for(location[0] if isinstance(location, (list, tuple)) else location, settings.REDIS_TIMEOUT)


def redis_state() -> str:
    """"up", "down", or "not configured" (locmem cache, no Redis in this deployment).

    While the circuit breaker is open this answers "down" without waiting on Redis again.
    """
    client = redis_client()
    if client is None:
        return "not configured"
    try:
        with redis_guard():
            client.ping()
    except REDIS_ERRORS:
        return "down"
    return "up"


# The pointer as this process last read it, for POINTER_MEMO_SECONDS: a request reads it without a
# Redis round trip; a publish in another process is followed within that time.
POINTER_MEMO_SECONDS = 1.0
_pointer_memo: tuple[float, str | None] = (float("-inf"), None)


def current_version_pointer() -> str:
    """The version readers use. Rebuilt from the database if Redis lost it (e.g. a flush).

    Remembered in process for POINTER_MEMO_SECONDS (switch_pointer in this process updates it at once).
    """
    global _pointer_memo
    read_at, pointer = _pointer_memo
    now = time.monotonic()
    if pointer is not None and now - read_at < POINTER_MEMO_SECONDS:
        return pointer
    pointer = cache.get(POINTER_KEY)
    if pointer is None:
        pointer = _published_version_id()
        cache.add(POINTER_KEY, pointer, timeout=None)
    _pointer_memo = (now, pointer)
    return pointer


def expire_version_pointer() -> None:
    """Make the next current_version_pointer() call read Redis."""
    global _pointer_memo
    _pointer_memo = (float("-inf"), None)


def _published_version_id() -> str:
    from recommendations.models import ModelVersion

    version_id = ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
    return str(version_id) if version_id else NO_MODEL


def switch_pointer(version_id) -> None:
    """Point readers at version_id's lists in one SET."""
    global _pointer_memo
    pointer = str(version_id) if version_id else NO_MODEL
    cache.set(POINTER_KEY, pointer, timeout=None)
    _pointer_memo = (time.monotonic(), pointer)


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
    """Write the user's list of this version (and drop their API responses made from the old one)."""
    cache.set(list_key(version, user_id), serialize(recommendations), timeout=settings.RECOMMENDER_CACHE_TTL)
    cache.delete(responses_key(version, user_id))


def store_many(version: str, lists: dict[int, list]) -> None:
    """Write several users' lists of one version (one round trip, and one to drop their API responses)."""
    cache.set_many(
        {list_key(version, user_id): serialize(recs) for user_id, recs in lists.items()},
        timeout=settings.RECOMMENDER_CACHE_TTL,
    )
    cache.delete_many([responses_key(version, user_id) for user_id in lists])


def user_list_version(user, pointer: str | None = None) -> str:
    """The version part of the user's list key: the served version, or while an experiment runs
    their arm's (version and arm), so the arms' lists never mix."""
    pointer = current_version_pointer() if pointer is None else pointer
    serving = experiments.serving_for(user)
    if serving is None:
        return pointer
    return f"{serving.version_id or pointer}{serving.cache_suffix}"


def forget_user_lists(user_id: int, *, every_version: bool = False) -> None:
    """Delete the user's cached list of the served version (or of every version and of "no
    model"), with its experiment arms' lists and the API responses made from them, so the next
    read computes it afresh. Raises a REDIS_ERRORS error when Redis is down."""
    from recommendations.models import Experiment, ModelVersion

    if every_version:
        versions = [str(pk) for pk in ModelVersion.objects.values_list("pk", flat=True)] + [NO_MODEL]
        tests = Experiment.objects.all()
    else:
        versions = [current_version_pointer()]
        tests = Experiment.objects.filter(status=Experiment.Status.RUNNING)
    list_versions = list(versions)
    for pk, version_a, version_b in tests.values_list("pk", "a_version_id", "b_version_id"):
        for arm, version in (("A", version_a), ("B", version_b)):
            # An arm without a version of its own serves whichever version was current.
            for base in ([str(version)] if version else versions):
                list_versions.append(f"{base}x{pk}{arm}")
    cache.delete_many([key(version, user_id) for version in list_versions for key in (list_key, responses_key)])
    if every_version:
        forget_personal_rows(user_id)


def forget_personal_rows(user_id: int) -> None:
    """Delete the user's cached personal rows (keyed by a digest of their taste, so found by
    pattern). Without Redis there is nothing shared to delete."""
    backend = getattr(default_cache, "_cache", None)
    if not hasattr(backend, "get_client"):
        return
    with redis_guard():
        client = backend.get_client(write=True)
        stale = list(client.scan_iter(match=default_cache.make_key(f"rec:*:u{user_id}:*"), count=1000))
        if stale:
            client.delete(*stale)


def record_warm(version, count: int, seconds: float) -> None:
    cache.set(
        LAST_WARM_KEY,
        {"at": time.time(), "version": str(version), "lists": count, "seconds": round(seconds, 3)},
        timeout=None,
    )


def _count(key: str) -> None:
    client = redis_client()
    if client is not None:
        with redis_guard():
            client.incr(cache.make_key(key))


def _drop_rated_and_hidden(user, payload: list[dict]) -> list[dict]:
    """The cached items the user has not rated or hidden since the list was written (one query)."""
    ids = [item["movie_id"] for item in payload]
    seen = set(
        Rating.objects.filter(user=user, movie_id__in=ids).order_by().values_list("movie_id", flat=True)
        .union(NotInterested.objects.filter(user=user, movie_id__in=ids).order_by().values_list("movie_id", flat=True))
    )
    return [item for item in payload if item["movie_id"] not in seen] if seen else payload


def get_recommendations(user, n: int = 20):
    """The user's top-n recommendations: from Redis, or computed (and stored) on a miss.

    Never a film the user has rated or hidden, even in the moment before their refreshed list
    is stored: the cached list is checked against their current ratings and hidden films.
    Never fails because of Redis: while it is unreachable the list is computed in process.
    On a fresh install with no model, the popularity fallback is served and a first fit is
    requested (once).
    """
    if not user.is_authenticated or breaker.is_open:
        return selectors.recommend_for_user(user, n=n)
    try:
        pointer = current_version_pointer()
        version = user_list_version(user, pointer)
        payload = cache.get(list_key(version, user.pk))
        _count(HITS_KEY if payload is not None else MISSES_KEY)
    except REDIS_ERRORS:
        return selectors.recommend_for_user(user, n=n)

    if payload:
        complete = len(payload) < settings.RECOMMENDER_CACHE_TOP_N  # the whole catalogue fitted in it
        fresh = _drop_rated_and_hidden(user, payload)
        if len(fresh) >= n or complete:
            recommendations = deserialize(fresh[:n])
            if recommendations or not fresh:
                return recommendations
    elif payload is not None:
        return []  # nothing left to recommend, and the cache knows it

    recommendations = selectors.recommend_for_user(user, n=max(n, settings.RECOMMENDER_CACHE_TOP_N))
    try:
        store_recommendations(version, user.pk, recommendations)
        if pointer == NO_MODEL:
            request_first_fit_once()
    except REDIS_ERRORS:
        pass  # the breaker logged it
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
            with redis_guard():
                status["keys"] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
                hits, misses = client.mget(cache.make_key(HITS_KEY), cache.make_key(MISSES_KEY))
            status["hits"], status["misses"] = int(hits or 0), int(misses or 0)
            total = status["hits"] + status["misses"]
            status["hit_ratio"] = status["hits"] / total if total else None
    except REDIS_ERRORS:
        status["redis"] = "down"
    return status


# --- Personal rows ---------------------------------------------------------------------------
# The rows besides top picks (home page, the API's genre and because rows) are computed from the
# model, the user's ratings, hidden films and profile, and the trending list: cached under a key
# holding all of these (selectors.taste_fingerprint for the user's part), so a rating, a hidden
# film or a moved dial gives a new key at once, and the rows cost the same however many films
# the user rated. In the fail-open default cache: without Redis they are computed each time.
PERSONAL_ROWS_TTL = 15 * 60


def _personal_key(kind: str, user, *parts) -> str:
    model = selectors.model_for_user(user)
    serving = experiments.serving_for(user)  # an experiment's arms never share rows, even on one version
    arm = serving.cache_suffix if serving is not None else ""
    digest = hashlib.blake2b(repr((selectors.taste_fingerprint(user), parts)).encode(), digest_size=12).hexdigest()
    return f"rec:{kind}:v{getattr(model, 'version_id', None)}{arm}:u{user.pk}:{digest}"


def _with_movies(payloads: list[list[dict]]) -> tuple[dict, list]:
    """({movie id: Movie with its genres}, the payloads' Recommendation lists) in one query (plus genres)."""
    movies = Movie.objects.in_bulk({item["movie_id"] for payload in payloads for item in payload})
    prefetch_related_objects(list(movies.values()), "genres")
    return movies, [[selectors.Recommendation(movies[item["movie_id"]], item["score"], item["predicted_stars"],
                                              item["explanation"]) for item in payload if item["movie_id"] in movies]
                    for payload in payloads]


def get_home_rows(user, *, top_picks, n: int, discovery: int):
    """selectors.home_rows, cached per user (see above)."""
    trending_now = [(e.movie_id, e.reason, e.raters) for e in trending.current(trending.SIZE)]
    key = _personal_key("home", user, n, discovery, serialize(top_picks), trending_now)
    payload = default_cache.get(key)
    if payload is None:
        rows = selectors.home_rows(user, top_picks=top_picks, n=n, discovery=discovery)
        default_cache.set(key, [(row.key, row.title, serialize(row.items)) for row in rows], PERSONAL_ROWS_TTL)
        return rows
    _, items = _with_movies([row_items for _, _, row_items in payload])
    rows = [selectors.Row(row_key, title, row) for (row_key, title, _), row in zip(payload, items)]
    return [row for row in rows if row.items]


def get_genre_row(user, *, genre, n: int, discovery: int | None):
    """selectors.recommend_for_user(user, genre=...), cached per user (see above)."""
    if not getattr(user, "is_authenticated", False):
        return selectors.recommend_for_user(user, n=n, genre=genre, discovery=discovery)
    key = _personal_key("genre", user, getattr(genre, "pk", genre), n, discovery)
    payload = default_cache.get(key)
    if payload is None:
        picks = selectors.recommend_for_user(user, n=n, genre=genre, discovery=discovery)
        default_cache.set(key, serialize(picks), PERSONAL_ROWS_TTL)
        return picks
    return _with_movies([payload])[1][0]


def get_because_row(user, *, n: int, anchor=None):
    """(title, explanation, films) of selectors.because_you_liked, cached per user; None when the
    user has no such rating (or has not rated ``anchor``)."""
    key = _personal_key("because", user, n, getattr(anchor, "pk", None))
    payload = default_cache.get(key)
    if payload is None:
        rating, movies = selectors.because_you_liked(user, n=n, anchor=anchor)
        payload = {"anchor": None} if rating is None else {
            "anchor": (f"Because you liked {rating.movie.title}", selectors.because_you_liked_explanation(rating)),
            "movies": [movie.pk for movie in movies]}
        default_cache.set(key, payload, PERSONAL_ROWS_TTL)
        if rating is None:
            return None
        return (*payload["anchor"], movies)
    if payload["anchor"] is None:
        return None
    movies = Movie.objects.in_bulk(payload["movies"])
    return (*payload["anchor"], [movies[pk] for pk in payload["movies"] if pk in movies])


# --- Whole answers: API rows and home page rows ------------------------------------------------
# A signed-in user's API row (the bytes sent) or home page rows (their rendered HTML) are kept in
# one Redis hash per user and list version (``rec:v<version>:u<user>:responses``), a field per
# request: a digest of what was asked, the user's taste fingerprint and the model serving them.
# A rating, a hidden film, a picked genre or a moved dial changes the fingerprint, so the next
# request misses; storing or forgetting the user's list deletes the hash (a refreshed list is
# served at once); a publish moves the pointer and with it the key. Beside each answer (field
# ``<field>:shown``) are the impression events of what it shows, but for their time
# (impressions.timeless_events). A hit is one round trip after the fingerprint query: one script
# reads the answer, counts the hit, and logs its impressions (pushes its events, timed now, onto
# the impressions' list as impressions._push does). Film statistics in a kept answer (rating
# count and mean) may lag by up to RESPONSE_TTL. Only with Redis (a locmem deployment computes
# each time).
RESPONSE_TTL = 120

# KEYS: the answers' hash, the hit counter, the impressions' list, and optionally an API
# throttle's window (movierec.api's _SLIDING_WINDOW, the same steps). ARGV: the answer's field,
# "1" to count a hit, "1" to log the impressions, the time to log them at (text), how many events
# the list keeps, then the throttle's now, window, limit and member. The throttle counts the request
# only when there is a kept answer to serve: a miss or a full window returns nothing and changes
# nothing, and the caller answers through DRF's view, which throttles as ever.
# Returns false, or {the answer, 1 when its impressions were logged here}.
_READ_ANSWER = """
local kept = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[1] .. ':shown')
local value, shown = kept[1], kept[2]
if not value then return false end
if KEYS[4] then
  local now, window, limit = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
  if redis.call('ZCARD', KEYS[4]) >= limit then return false end
  redis.call('ZADD', KEYS[4], now, ARGV[9])
  redis.call('EXPIRE', KEYS[4], math.ceil(window))
end
if ARGV[2] == '1' then redis.call('INCR', KEYS[2]) end
if not shown then return {value, 0} end
if ARGV[3] == '1' then
  local events = {}
  for i, head in ipairs(cjson.decode(shown)) do events[i] = head .. ARGV[4] .. '}' end
  for first = 1, #events, 1000 do
    redis.call('RPUSH', KEYS[3], unpack(events, first, math.min(first + 999, #events)))
  end
  if #events > 0 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1) end
end
return {value, 1}
"""


def responses_key(version: str, user_id: int) -> str:
    return f"rec:v{version}:u{user_id}:responses"


@lru_cache(maxsize=4)
def _read_answer_script(client: redis.Redis):
    return client.register_script(_READ_ANSWER)


def answer_slot(user, asked: dict) -> tuple[str, str] | None:
    """(Redis hash key, field) where the signed-in user's answer to ``asked`` (the API query, or
    what a page shows) is kept, or None when it is not kept (a guest, no Redis, Redis down)."""
    if not getattr(user, "is_authenticated", False) or redis_client() is None or breaker.is_open:
        return None
    try:
        version = user_list_version(user)
    except REDIS_ERRORS:
        return None
    model = selectors.model_for_user(user)
    field = hashlib.blake2b(repr((sorted(asked.items()), selectors.taste_fingerprint(user),
                                  getattr(model, "version_id", None))).encode(), digest_size=16).hexdigest()
    return cache.make_key(responses_key(version, user.pk)), field


def home_rows_slot(user, *, n: int, discovery: int) -> tuple[str, str] | None:
    """answer_slot of the signed-in home page's rows (they hold the trending list too)."""
    if redis_client() is None or breaker.is_open:
        return None
    trending_now = [entry.movie_id for entry in trending.current(trending.SIZE)]
    return answer_slot(user, {"page": "home", "n": n, "discovery": discovery, "trending": trending_now})


def read_answer(slot: tuple[str, str], *, count_hit: bool, shown_to,
                throttle: tuple[str, list] | None = None) -> tuple[list[tuple[str, list[int]]], list[str]] | None:
    """([(row, ids of the films shown)], the rendered parts) kept in ``slot``, or None; its
    impressions logged as shown to ``shown_to`` (the signed-in user the slot is theirs), in the
    same round trip when they were kept with it (else by impressions.log_rows).
    ``count_hit``: a hit counts as a recommendation cache hit (an answer holding the top list).
    ``throttle``: an API throttle's window (movierec.api UserThrottle.window): a hit is counted
    in it in the same round trip, and a full window reads as a miss (nothing counted or logged)."""
    from recommendations import impressions  # it imports this module

    client = redis_client()
    target = impressions.buffer_target()
    buffer, cap = target if target is not None else (cache.make_key(impressions.BUFFER_KEY), 0)
    keys = [slot[0], cache.make_key(HITS_KEY), buffer]
    args = [slot[1], "1" if count_hit else "0", "0" if target is None else "1", repr(time.time()), cap]
    if throttle is not None:
        keys.append(throttle[0])
        args.extend(throttle[1])
    try:
        with redis_guard():
            found = _read_answer_script(client)(keys=keys, args=args)
    except REDIS_ERRORS:
        return None
    if not found:
        return None
    value, logged = found
    rows, parts = pickle.loads(value)
    if not logged:  # kept without its impressions' events
        impressions.log_rows(shown_to, rows)
    return rows, parts


def keep_answer(slot: tuple[str, str], rows: list[tuple[str, list[int]]], parts: list[str], *, shown_to) -> None:
    """Keep an answer in ``slot`` for RESPONSE_TTL: the rows it shows (row, film ids), its
    rendered parts, and the impression events of those rows shown to ``shown_to`` (for
    read_answer to log). Nothing is kept when Redis fails. The caller logs this showing itself."""
    from recommendations import impressions  # it imports this module

    events = json.dumps(impressions.timeless_events(shown_to, rows))
    try:
        with redis_guard():
            pipe = redis_client().pipeline(transaction=False)
            pipe.hset(slot[0], mapping={slot[1]: pickle.dumps((rows, parts), pickle.HIGHEST_PROTOCOL),
                                        f"{slot[1]}:shown": events})
            pipe.expire(slot[0], RESPONSE_TTL)
            pipe.execute()
    except REDIS_ERRORS:
        pass  # the breaker logged it
