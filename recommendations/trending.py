"""Trending: films gaining attention from many people who like them, measured against their usual rate.

For each film rated by at least MIN_RATERS distinct people in the last WINDOW_DAYS, momentum = the window's *weighted* raters minus what the film usually gets over
that long (its weighted ratings in the BASELINE_DAYS before the window, scaled to the window).
A rating weighs (stars - 2.5) / 2.5, clipped to [0, 1]: a 5-star rating counts 1, 4 stars 0.6,
2.5 stars or fewer nothing, so a film people rate 1 star never rises and a classic rated at its
usual pace is not "trending". When fewer films than asked qualify (little recent activity), the
list is completed with well-liked recent releases (the catalogue's last RECENT_YEARS years of
release, rated WELL_LIKED_MEAN or more on average, Bayesian average first).

The list is computed by the periodic task recommendations.refresh_trending (every
REFRESH_MINUTES) and kept in the default cache; pages only read it (computed in the request
once when the cache has nothing). The window query uses the rating_updated_at index.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from django.db.models import Count, F, FloatField, Max, Sum, Value
from django.db.models.functions import Greatest, Least

from catalog.models import Movie, Rating
from catalog.selectors import with_bayesian_average

WINDOW_DAYS = 14
BASELINE_DAYS = 180
MIN_RATERS = 5
RECENT_YEARS = 3
RECENT_MIN_RATINGS = 1
WELL_LIKED_MEAN = 3.5
SIZE = 60
REFRESH_MINUTES = 15
CACHE_KEY = "rec:trending"
CACHE_SECONDS = 2 * REFRESH_MINUTES * 60

RISING = "rising"
RECENT = "recent"


@dataclass
class TrendingEntry:
    movie_id: int
    reason: str  # RISING or RECENT
    raters: int  # distinct people in the window (0 for RECENT)


def explanation(entry: TrendingEntry) -> str:
    """Why the film is in the trending row, in words."""
    if entry.reason == RISING:
        return f"Rising: {entry.raters} people rated it in the last {WINDOW_DAYS} days, more and better than usual"
    return "Well liked among recent releases"


def compute(*, n: int = SIZE, now=None) -> list[TrendingEntry]:
    """The trending list as of ``now`` (default: the current time), from the ratings (four queries)."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    # A rating's weight: (stars - 2.5) / 2.5 clipped to [0, 1].
    weight = Least(Greatest((F("score") - 2.5) / 2.5, Value(0.0)), Value(1.0), output_field=FloatField())
    window = {
        row["movie_id"]: row
        for row in Rating.objects.filter(updated_at__gt=since, updated_at__lte=now)
        .values("movie_id").annotate(raters=Count("id"), weighted=Sum(weight))
        .filter(raters__gte=MIN_RATERS)
    }
    usual = dict(
        Rating.objects.filter(movie_id__in=list(window), updated_at__gt=since - timedelta(days=BASELINE_DAYS),
                              updated_at__lte=since)
        .values("movie_id").annotate(weighted=Sum(weight)).values_list("movie_id", "weighted")
    )
    scale = WINDOW_DAYS / BASELINE_DAYS
    momentum = {m: row["weighted"] - (usual.get(m) or 0.0) * scale for m, row in window.items()}
    rising = sorted((m for m, value in momentum.items() if value > 0), key=lambda m: (-momentum[m], m))[:n]
    entries = [TrendingEntry(m, RISING, window[m]["raters"]) for m in rising]
    if len(entries) < n:
        entries += [TrendingEntry(m, RECENT, 0) for m in _recent_releases(n - len(entries), set(rising))]
    return entries


def _recent_releases(n: int, exclude: set[int]) -> list[int]:
    newest = Movie.objects.filter(rating_count__gte=RECENT_MIN_RATINGS).aggregate(year=Max("year"))["year"]
    if newest is None:
        return []
    recent = Movie.objects.filter(year__gt=newest - RECENT_YEARS, rating_count__gte=RECENT_MIN_RATINGS,
                                  rating_mean__gte=WELL_LIKED_MEAN).exclude(pk__in=exclude)
    return list(with_bayesian_average(recent).order_by("-bayesian_average", "-rating_count", "pk").values_list("pk", flat=True)[:n])


def refresh() -> int:
    """Compute the list and keep it in the cache (the periodic task); returns its length."""
    entries = compute()
    cache.set(CACHE_KEY, [(e.movie_id, e.reason, e.raters) for e in entries], timeout=CACHE_SECONDS)
    return len(entries)


def current(n: int) -> list[TrendingEntry]:
    """The first n entries of the cached list (computed and cached here when it is missing)."""
    stored = cache.get(CACHE_KEY)
    if stored is None:
        entries = compute()
        cache.set(CACHE_KEY, [(e.movie_id, e.reason, e.raters) for e in entries], timeout=CACHE_SECONDS)
    else:
        entries = [TrendingEntry(*row) for row in stored]
    return entries[:n]
