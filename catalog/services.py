"""Services that write the catalogue: ratings, lists, and the denormalised movie statistics."""
from django.db import connection
from django.db.models import Avg, Count

from catalog.models import Movie, Rating


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
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {movie_table} SET
                rating_count = COALESCE((SELECT COUNT(*) FROM {rating_table} r WHERE r.movie_id = {movie_table}.id), 0),
                rating_mean = COALESCE((SELECT AVG(r.score) FROM {rating_table} r WHERE r.movie_id = {movie_table}.id), 0)"""
        )
