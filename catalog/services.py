"""Services that write the catalogue: ratings, lists, and the denormalised movie statistics."""
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Avg, Count
from django.utils import timezone

from catalog.models import HALF_STARS, Movie, NotInterested, Rating, WatchlistEntry
from recommendations.tasks import request_user_refresh

RATING_RULE = "A rating is 0.5 to 5 stars in half-star steps (0.5, 1, 1.5 … 5)."


def validate_score(score) -> float:
    """Return score as a float if it is a half-star value from 0.5 to 5.0, else raise ValidationError."""
    try:
        value = Decimal(str(score).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{score!r} is not a number. {RATING_RULE}", code="not_a_number")
    if not value.is_finite() or float(value) not in HALF_STARS:
        raise ValidationError(f"{score} is not a valid rating. {RATING_RULE}", code="out_of_range")
    return float(value)


def _notify_feedback_changed(user_id: int) -> None:
    # A debounced Celery task folds the user in (recommendations.feedback) and replaces their cached list.
    transaction.on_commit(lambda: request_user_refresh(user_id))


@transaction.atomic
def rate_movie(*, user, movie, score, rated_at=None) -> Rating:
    """Create or change the user's rating of movie; keeps the movie's statistics current.

    rated_at (default now) is when the rating was given: an imported diary keeps its dates.
    A rated film leaves the user's watchlist (it has been seen).
    Raises ValidationError (nothing stored) when score is not a half-star value in 0.5..5.0.
    """
    value = validate_score(score)
    when = rated_at or timezone.now()
    rating, created = Rating.objects.get_or_create(
        user=user, movie=movie, defaults={"score": value, "created_at": when, "updated_at": when}
    )
    if not created and rating.score != value:
        rating.score = value
        rating.updated_at = when
        rating.save(update_fields=["score", "updated_at"])
    WatchlistEntry.objects.filter(user=user, movie=movie).delete()
    refresh_movie_stats([movie.pk])
    _notify_feedback_changed(user.pk)
    return rating


@transaction.atomic
def remove_rating(*, user, movie) -> bool:
    """Delete the user's rating of movie if there is one; returns whether one was deleted."""
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        refresh_movie_stats([movie.pk])
        _notify_feedback_changed(user.pk)
    return bool(deleted)


def add_to_watchlist(*, user, movie, added_at=None) -> WatchlistEntry:
    """Put movie on the user's watchlist (no-op if it is already there).

    added_at (default now) dates a new entry: an imported watchlist keeps its order.
    """
    entry, created = WatchlistEntry.objects.get_or_create(user=user, movie=movie)
    if created and added_at is not None:  # added_at is auto_now_add: it can only be changed after
        WatchlistEntry.objects.filter(pk=entry.pk).update(added_at=added_at)
        entry.added_at = added_at
    return entry


def remove_from_watchlist(*, user, movie) -> None:
    """Take movie off the user's watchlist (no-op if it is not there)."""
    WatchlistEntry.objects.filter(user=user, movie=movie).delete()


@transaction.atomic
def hide_movie(*, user, movie) -> NotInterested:
    """Mark movie as "not interested": it is never recommended to this user again."""
    entry, created = NotInterested.objects.get_or_create(user=user, movie=movie)
    if created:
        _notify_feedback_changed(user.pk)
    return entry


@transaction.atomic
def unhide_movie(*, user, movie) -> None:
    """Undo hide_movie: the movie may be recommended again."""
    deleted, _ = NotInterested.objects.filter(user=user, movie=movie).delete()
    if deleted:
        _notify_feedback_changed(user.pk)


def refresh_movie_stats(movie_ids=None) -> None:
    """Recompute Movie.rating_count and Movie.rating_mean from the ratings table.

    With movie_ids, only those movies; without, the whole catalogue in one set-based update
    (used after bulk imports and the demo load).
    """
    if movie_ids is not None:
        stats = {
            row["movie_id"]: row
            for row in Rating.objects.filter(movie_id__in=movie_ids)
            .values("movie_id")
            .annotate(n=Count("id"), mean=Avg("score"))
        }
        movies = list(Movie.objects.filter(pk__in=movie_ids))
        for movie in movies:
            row = stats.get(movie.pk)
            movie.rating_count = row["n"] if row else 0
            movie.rating_mean = row["mean"] if row else 0.0
        Movie.objects.bulk_update(movies, ["rating_count", "rating_mean"])
        return
    movie_table, rating_table = Movie._meta.db_table, Rating._meta.db_table
    # One aggregate pass over the ratings joined back to the movies (per-movie correlated
    # subqueries take minutes at 10M ratings); only movies whose figures changed are written.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {movie_table} SET rating_count = s.n, rating_mean = s.mean
                FROM (SELECT m.id AS movie_id, COUNT(r.id) AS n, COALESCE(AVG(r.score), 0) AS mean
                      FROM {movie_table} m LEFT JOIN {rating_table} r ON r.movie_id = m.id GROUP BY m.id) s
                WHERE {movie_table}.id = s.movie_id
                AND ({movie_table}.rating_count <> s.n OR {movie_table}.rating_mean <> s.mean)"""
        )
