"""Read-only queries about a user's account and activity."""
from django.db.models import Avg, Count
from django.utils import timezone
from knox.models import AuthToken

from catalog.models import NotInterested, Rating, WatchlistEntry
from recommendations.models import HistoryImport

# How many characters of a token the profile page shows, so a user can tell their tokens apart.
TOKEN_SHOWN_CHARACTERS = 8


def user_activity(user, *, recent=10) -> dict:
    """What the profile page shows: rating count and mean, recent ratings, list sizes."""
    totals = Rating.objects.filter(user=user).aggregate(count=Count("id"), mean=Avg("score"))
    recent_ratings = list(
        Rating.objects.filter(user=user).select_related("movie").order_by("-updated_at", "-id")[:recent]
    )
    return {
        "rating_count": totals["count"],
        "rating_mean": totals["mean"],
        "recent_ratings": recent_ratings,
        "watchlist_count": WatchlistEntry.objects.filter(user=user).count(),
        "not_interested_count": NotInterested.objects.filter(user=user).count(),
    }


def api_tokens(user) -> list[dict]:
    """The user's live API tokens, newest first: the start of each, when it was issued and expires."""
    tokens = AuthToken.objects.filter(user=user, expiry__gt=timezone.now()).order_by("-created", "-pk")
    return [
        {"digest": t.digest, "starts_with": t.token_key[:TOKEN_SHOWN_CHARACTERS], "created": t.created, "expiry": t.expiry}
        for t in tokens
    ]


def _movie_reference(movie) -> dict:
    return {
        "id": movie.pk,
        "title": movie.title,
        "year": movie.year,
        "movielens_id": movie.movielens_id,
        "imdb_id": movie.imdb_id,
        "tmdb_id": movie.tmdb_id,
    }


def _list_entries(model, user) -> list[dict]:
    entries = model.objects.filter(user=user).select_related("movie").order_by("added_at", "id")
    return [{"movie": _movie_reference(e.movie), "added_at": e.added_at.isoformat()} for e in entries]


def export_user_data(user) -> dict:
    """Everything movierec holds about one user, as JSON-serialisable data ("download my data")."""
    ratings = Rating.objects.filter(user=user).select_related("movie").order_by("created_at", "id")
    return {
        "profile": {
            "email": user.email,
            "date_joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
            "birth_year": user.birth_year,
            "gender": user.gender,
            "occupation": user.occupation,
            "country": user.country,
            "source": user.source,
            "favourite_genres": sorted(user.genre_preferences.values_list("genre__name", flat=True)),
        },
        "ratings": [
            {
                "movie": _movie_reference(r.movie),
                "score": r.score,
                "created_at": r.created_at.isoformat(),
                "updated_at": r.updated_at.isoformat(),
            }
            for r in ratings
        ],
        "tags": [
            {"movie": _movie_reference(t.movie), "tag": t.tag, "created_at": t.created_at.isoformat()}
            for t in user.tags.select_related("movie").order_by("created_at", "id")
        ],
        "watchlist": _list_entries(WatchlistEntry, user),
        "not_interested": _list_entries(NotInterested, user),
        "history_imports": [
            {
                "source": run.source,
                "filename": run.filename,
                "status": run.status,
                "created_at": run.created_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "rows_to_apply": run.total,
                "ratings_saved": run.ratings_saved,
                "watchlist_saved": run.watchlist_saved,
                "error": run.error,
                "rows": run.rows,
            }
            for run in HistoryImport.objects.filter(user=user).order_by("created_at", "id")
        ],
    }
