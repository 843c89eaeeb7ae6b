"""Impressions: every recommendation shown to a signed-in user, and what they did about it.

A page (or API call) that shows recommendations calls ``log_shown``; opening a film's page, adding
it to the watchlist, rating it and hiding it call ``log_outcome``. Neither touches the database:
both append JSON events to one Redis list (RPUSH in a pipeline, capped at IMPRESSIONS_BUFFER_MAX),
and the periodic task ``recommendations.flush_impressions`` moves them into the database in
batches (``flush``: bulk_create of the impressions, then each outcome linked to the latest
impression of that film for that user shown within IMPRESSIONS_OUTCOME_WINDOW_HOURS before it).
Events are applied in the order they were pushed, so an outcome always finds the impression the
user saw before it.

While Redis is unreachable events are dropped (counted in ``dropped``): a page never waits on or
fails because of the log. A deployment without Redis (``REDIS_URL`` empty: tasks run in process)
writes them through at once. ``IMPRESSIONS_ENABLED=0`` switches logging off.

Guests are not logged: an impression belongs to a user, and so does every outcome.
"""
from __future__ import annotations

import contextvars
import json
import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from catalog.models import Movie
from movierec.cache_backends import REDIS_ERRORS, breaker, redis_guard
from recommendations import cache, experiments
from recommendations.models import Experiment, Impression, ImpressionDaily, ModelVersion

logger = logging.getLogger(__name__)

BUFFER_KEY = "imp:buffer"
OUTCOMES = {"opened": "opened_at", "watchlisted": "watchlisted_at", "rated": "rated_at", "hidden": "hidden_at"}
# One flush task moves at most this many batches, so a backlog cannot hold a worker for long.
FLUSH_MAX_BATCHES = 20

dropped = 0  # events this process dropped because Redis was unreachable


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def _timestamp(at: datetime | None) -> float:
    return (at or timezone.now()).timestamp()


def log_shown(user, row: str, movies, *, version_id: int | None = None, in_experiment: bool = True,
              at: datetime | None = None) -> None:
    """Log the films (in the order shown, first = position 0) of one row shown to the user.

    ``version_id``: the model version that chose them (default: the one serving this user, their
    experiment arm's if they are in one); ``in_experiment=False`` for a row the user's arm does
    not choose (a group's list); ``at``: when (default now).
    """
    log_rows(user, [(row, movies)], version_id=version_id, in_experiment=in_experiment, at=at)


def log_rows(user, rows, *, version_id: int | None = None, in_experiment: bool = True,
             at: datetime | None = None) -> None:
    """log_shown for several rows of one page at once (one write): ``rows`` is [(row, films)]."""
    if not settings.IMPRESSIONS_ENABLED or not _signed_in(user):
        return
    when = _timestamp(at)
    events = [{**event, "at": when} for event in _shown_events(user, rows, version_id, in_experiment)]
    if events:
        _push(events)


def _shown_events(user, rows, version_id: int | None, in_experiment: bool) -> list[dict]:
    """log_rows' events for ``rows`` (everything but their time, "at")."""
    serving = experiments.serving_for(user) if in_experiment else None
    if version_id is None:
        version_id = serving_version_id(serving)
    return [{"t": "i", "u": user.pk, "m": getattr(movie, "pk", movie), "r": row[:16], "p": position,
             "v": version_id, "e": serving.experiment_id if serving else None, "a": serving.arm if serving else ""}
            for row, movies in rows for position, movie in enumerate(movies)]


def timeless_events(user, rows) -> list[str]:
    """The events log_rows(user, rows) would push, as JSON text cut where their time goes: each
    event is ``head + repr(timestamp) + "}"``. Kept with a signed-in user's kept answer
    (recommendations.cache.keep_answer), so the script that reads the answer back logs what it
    shows in the same round trip (read_answer), with the time of that read. What they hold besides
    the time (user, model version, experiment arm) is part of the kept answer's key. [] for a guest."""
    if not _signed_in(user):
        return []
    return [json.dumps(event, separators=(",", ":"))[:-1] + ',"at":'
            for event in _shown_events(user, rows, None, True)]


def buffer_target() -> tuple[str, int] | None:
    """(Redis key of the events' list, how many it keeps) for a script that pushes events as _push
    does (RPUSH, then LTRIM to the last IMPRESSIONS_BUFFER_MAX), or None when logging is off."""
    if not settings.IMPRESSIONS_ENABLED:
        return None
    return cache.cache.make_key(BUFFER_KEY), settings.IMPRESSIONS_BUFFER_MAX


def serving_version_id(serving=None) -> int | None:
    """The model version serving a user of this arm (the published one outside experiments)."""
    if serving is not None and serving.version_id is not None:
        return serving.version_id
    from recommendations.selectors import current_model

    model = current_model()
    return getattr(model, "version_id", None)


def log_outcome(user, movie_id: int, kind: str, *, stars: float | None = None, at: datetime | None = None) -> None:
    """Log that the user opened, watchlisted, rated (``stars``) or hid a film (``kind``: a key of OUTCOMES)."""
    if kind not in OUTCOMES:
        raise ValueError(f"Unknown outcome {kind!r}")
    if not settings.IMPRESSIONS_ENABLED or not _signed_in(user):
        return
    _push([{"t": "o", "u": user.pk, "m": int(movie_id), "k": kind, "s": stars, "at": _timestamp(at)}])


def log_outcome_on_commit(user, movie_id: int, kind: str, *, stars: float | None = None) -> None:
    """log_outcome once the surrounding transaction commits (nothing if it rolls back)."""
    transaction.on_commit(lambda: log_outcome(user, movie_id, kind, stars=stars))


# Events logged inside one_write() wait here until the block ends.
_pending: contextvars.ContextVar[list | None] = contextvars.ContextVar("impressions_pending", default=None)


@contextmanager
def one_write():
    """Write what is logged inside the block (a page's opened film and its shelves) together
    when it ends: one Redis round trip instead of one per call."""
    pending: list[dict] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        if pending:
            _push(pending)


def _push(events: list[dict]) -> None:
    global dropped
    pending = _pending.get()
    if pending is not None:
        pending.extend(events)
        return
    client = cache.redis_client()
    if client is None:
        apply_events(events, current=True)  # no Redis in this deployment: written through at once
        return
    if breaker.is_open:
        dropped += len(events)
        return
    key = cache.cache.make_key(BUFFER_KEY)
    try:
        with redis_guard():
            pipe = client.pipeline(transaction=False)
            pipe.rpush(key, *[json.dumps(event, separators=(",", ":")) for event in events])
            pipe.ltrim(key, -settings.IMPRESSIONS_BUFFER_MAX, -1)
            pipe.execute()
    except REDIS_ERRORS:
        dropped += len(events)  # the breaker logged the outage


def buffered() -> int:
    """Events waiting in Redis (0 without Redis)."""
    client = cache.redis_client()
    if client is None:
        return 0
    with redis_guard():
        return int(client.llen(cache.cache.make_key(BUFFER_KEY)))


def flush(batch: int | None = None) -> int:
    """Move buffered events from Redis into the database, oldest first; returns how many.

    Each batch is taken off the list atomically (LRANGE + LTRIM in a MULTI) and written in one
    transaction; if writing fails, the batch is put back at the head of the list.
    """
    client = cache.redis_client()
    if client is None:
        return 0
    batch = batch or settings.IMPRESSIONS_FLUSH_BATCH
    key = cache.cache.make_key(BUFFER_KEY)
    moved = 0
    for _ in range(FLUSH_MAX_BATCHES):
        with redis_guard():
            pipe = client.pipeline(transaction=True)
            pipe.lrange(key, 0, batch - 1)
            pipe.ltrim(key, batch, -1)
            raw, _ = pipe.execute()
        if not raw:
            break
        try:
            apply_events([json.loads(item) for item in raw])
        except Exception:
            with redis_guard():
                client.lpush(key, *reversed(raw))
            raise
        moved += len(raw)
        if len(raw) < batch:
            break
    return moved


def _when(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=dt_timezone.utc)


@transaction.atomic
def apply_events(events: list[dict], *, current: bool = False) -> None:
    """Write impressions (bulk_create) then link outcomes, in the order given. Events of users,
    films, versions or experiments deleted since they were logged are dropped (``current``: the
    events were made this moment, so everything they name exists)."""
    if not events:
        return
    if current:
        users, movies = {e["u"] for e in events}, {e["m"] for e in events}
        versions, tests = {e.get("v") for e in events} - {None}, {e.get("e") for e in events} - {None}
    else:
        users = set(get_user_model().objects.filter(pk__in={e["u"] for e in events}).values_list("pk", flat=True))
        movies = set(Movie.objects.filter(pk__in={e["m"] for e in events}).values_list("pk", flat=True))
        versions = set(ModelVersion.objects.filter(pk__in={e.get("v") for e in events} - {None})
                       .values_list("pk", flat=True))
        tests = set(Experiment.objects.filter(pk__in={e.get("e") for e in events} - {None}).values_list("pk", flat=True))
    pending: list[Impression] = []
    for event in events:
        if event["u"] not in users or event["m"] not in movies:
            continue
        if event["t"] == "i":
            pending.append(Impression(
                user_id=event["u"], movie_id=event["m"], row=event["r"], position=event["p"],
                model_version_id=event["v"] if event["v"] in versions else None,
                experiment_id=event["e"] if event["e"] in tests else None,
                arm=event["a"] if event["e"] in tests else "", shown_at=_when(event["at"])))
        else:
            if pending:
                Impression.objects.bulk_create(pending, batch_size=1000)
                pending = []
            _link_outcome(event)
    if pending:
        Impression.objects.bulk_create(pending, batch_size=1000)


def _link_outcome(event: dict) -> bool:
    at = _when(event["at"])
    window = timedelta(hours=settings.IMPRESSIONS_OUTCOME_WINDOW_HOURS)
    field = OUTCOMES[event["k"]]
    impression = (Impression.objects.filter(user_id=event["u"], movie_id=event["m"], shown_at__lte=at,
                                            shown_at__gte=at - window)
                  .order_by("-shown_at", "position").first())
    if impression is None:
        return False
    changes = {}
    if getattr(impression, field) is None or field == "rated_at":  # a rating changed later counts with its stars
        changes[field] = at
    if field == "rated_at":
        changes["stars"] = event.get("s")
    if changes:
        Impression.objects.filter(pk=impression.pk).update(**changes)
    return True


# ----------------------------------------------------------------------------- retention


def aggregate_and_prune(*, now: datetime | None = None) -> int:
    """Add up the raw impressions older than IMPRESSIONS_RETENTION_DAYS per day, row, version and
    arm into ImpressionDaily, and delete them; returns how many were pruned.

    The cut-off is a day boundary, so a day is aggregated whole, once.
    """
    now = now or timezone.now()
    cutoff = timezone.localtime(now - timedelta(days=settings.IMPRESSIONS_RETENTION_DAYS)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    with transaction.atomic():
        old = Impression.objects.filter(shown_at__lt=cutoff)
        for group in daily_counts(old):
            daily, _ = ImpressionDaily.objects.select_for_update().get_or_create(
                day=group["day"], row=group["row"], model_version_id=group["model_version"],
                experiment_id=group["experiment"], arm=group["arm"])
            for field in ("impressions", "opened", "watchlisted", "rated", "hidden"):
                setattr(daily, field, getattr(daily, field) + group[field])
            daily.stars_sum += group["stars_sum"] or 0.0
            daily.save()
        pruned, _ = old.delete()
    if pruned:
        logger.info("Aggregated and pruned %d impressions shown before %s", pruned, cutoff.date())
    return pruned


def daily_counts(impressions) -> list[dict]:
    """The impressions grouped by day, row, model_version, experiment and arm, with their
    outcome counts (the columns of ImpressionDaily)."""
    return list(
        impressions.annotate(day=TruncDate("shown_at"))
        .values("day", "row", "model_version", "experiment", "arm")
        .annotate(impressions=Count("pk"), opened=Count("pk", filter=Q(opened_at__isnull=False)),
                  watchlisted=Count("pk", filter=Q(watchlisted_at__isnull=False)),
                  rated=Count("pk", filter=Q(rated_at__isnull=False)), stars_sum=Sum("stars"),
                  hidden=Count("pk", filter=Q(hidden_at__isnull=False)))
        .order_by("day", "row", "model_version", "experiment", "arm")
    )
