"""Onboarding: favourite genres, a diverse set of informative movies to rate, guest ratings.

Selectors read (favourite_genre_ids, informative_movies, guest_ratings); services write
(set_favourite_genres, save_onboarding_answers, remember_guest_rating, save_guest_ratings).
Guest ratings live in the session until sign-up or log-in, when the allauth signal receivers
at the bottom hand them to save_guest_ratings.
"""
from __future__ import annotations

import math
from collections import Counter

from allauth.account.signals import user_logged_in, user_signed_up
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, Count, F, FloatField
from django.db.models.functions import Cast
from django.dispatch import receiver

from catalog import services as catalog_services
from catalog.models import Genre, Movie, NotInterested, Rating
from recommendations.models import GenrePreference
from recommendations.tasks import request_user_refresh

GUEST_RATINGS_SESSION_KEY = "guest_ratings"
DISMISSED_SESSION_KEY = "onboarding_dismissed"
RATINGS_FOR_GOOD_SUGGESTIONS = 10
CANDIDATE_POOL = 300
FAVOURITE_SHARE = 0.75  # of the films offered, from the genres the user picked (when they picked any)
HAVE_NOT_SEEN = "unseen"
SKIP = "skip"
MAX_ID = 2**63 - 1  # the largest id a database column holds


def parse_id(value) -> int | None:
    """A database id from form input (ASCII digits, 1 to MAX_ID), else None.

    str.isdigit() alone lets through "²" and other digits int() refuses, and numbers too large
    for the database (SQLite raises on them).
    """
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


# --- Genres -----------------------------------------------------------------------------------


def favourite_genre_ids(user) -> list[int]:
    """Ids of the genres the user picked as favourites (empty for guests)."""
    if not user.is_authenticated:
        return []
    return list(GenrePreference.objects.filter(user=user).values_list("genre_id", flat=True))


@transaction.atomic
def set_favourite_genres(*, user, genres) -> None:
    """Make exactly these genres the user's favourites (their list follows them at once)."""
    genre_ids = {genre.pk for genre in genres}
    GenrePreference.objects.filter(user=user).exclude(genre_id__in=genre_ids).delete()
    existing = set(GenrePreference.objects.filter(user=user).values_list("genre_id", flat=True))
    GenrePreference.objects.bulk_create(
        [GenrePreference(user=user, genre_id=pk) for pk in sorted(genre_ids - existing)]
    )
    # The picked genres are part of the user's features and of their list's genre target.
    transaction.on_commit(lambda: request_user_refresh(user.pk))


# --- Which movies to ask about ----------------------------------------------------------------


def informative_movies(*, user=None, n: int = 12, exclude_ids=(), favourite_genre_ids=()) -> list[Movie]:
    """n movies worth asking a new user about: known, divisive, and spread over genres and decades.

    Candidates are the CANDIDATE_POOL most-rated movies (minus those the user rated, hid or
    dismissed); when the user picked favourite genres, FAVOURITE_SHARE of the n come from the
    most-rated movies of those genres, the rest from the others (so the answers also say what
    else they like), and films mostly of the picked genres are preferred. Within each part,
    greedily the best of popularity × spread of opinions, discounted by how many picks already
    share its genres and decade.
    """
    excluded = set(exclude_ids)
    if user is not None and user.is_authenticated:
        excluded |= set(Rating.objects.filter(user=user).values_list("movie_id", flat=True))
        excluded |= set(NotInterested.objects.filter(user=user).values_list("movie_id", flat=True))
    candidates = Movie.objects.exclude(pk__in=excluded).order_by("-rating_count", "pk")
    favourites = set(favourite_genre_ids)
    if favourites:
        in_favourites = list(candidates.filter(genres__in=favourites).distinct().prefetch_related("genres")[:CANDIDATE_POOL])
        chosen_ids = {movie.pk for movie in in_favourites}
        others = [movie for movie in candidates.prefetch_related("genres")[:CANDIDATE_POOL] if movie.pk not in chosen_ids]
        parts = [(in_favourites, math.ceil(n * FAVOURITE_SHARE)), (others, n), (in_favourites, n)]
    else:
        in_favourites, others = [], list(candidates.prefetch_related("genres")[:CANDIDATE_POOL])
        parts = [(others, n)]
    spread = _rating_spread([movie.pk for movie in in_favourites + others])

    def picked_share(movie):  # a romantic comedy says more about Romance + Comedy than a crime comedy
        genres = {genre.pk for genre in movie.genres.all()}
        return len(genres & favourites) / len(genres) if genres else 0.0

    base = {movie.pk: math.log1p(movie.rating_count) * (0.5 + spread.get(movie.pk, 0.5))
            * (0.5 + 0.5 * picked_share(movie) if favourites else 1.0) + 1e-6 for movie in in_favourites + others}

    picked, genre_counts, decade_counts = [], Counter(), Counter()
    for pool, quota in parts:
        taken = {movie.pk for movie in picked}
        remaining = {movie.pk: movie for movie in pool if movie.pk not in taken}
        while remaining and len(picked) < min(quota, n):
            def diversified(movie):
                crowd = max((genre_counts[genre.pk] for genre in movie.genres.all()), default=0)
                return base[movie.pk] / (1 + crowd) / (1 + 0.5 * decade_counts[movie.decade])

            best = max(remaining.values(), key=lambda movie: (diversified(movie), -movie.pk))
            del remaining[best.pk]
            picked.append(best)
            genre_counts.update(genre.pk for genre in best.genres.all())
            decade_counts[best.decade] += 1
    return picked


def _rating_spread(movie_ids) -> dict[int, float]:
    """Standard deviation of each movie's ratings (how much people disagree about it)."""
    rows = (
        Rating.objects.filter(movie_id__in=movie_ids)
        .values("movie_id")
        .annotate(n=Count("id"), mean=Avg("score"), mean_sq=Avg(Cast(F("score") * F("score"), FloatField())))
    )
    return {row["movie_id"]: math.sqrt(max(row["mean_sq"] - row["mean"] ** 2, 0.0)) for row in rows if row["n"] > 1}


# --- Answers ----------------------------------------------------------------------------------


def save_onboarding_answers(*, user, session, answers: dict[int, str]) -> int:
    """Save answers {movie id: "0.5".."5" | HAVE_NOT_SEEN | SKIP}; returns how many were ratings.

    Signed-in users' ratings go through catalog.services.rate_movie; a guest's go to the session.
    "Haven't seen" is remembered for the session so the movie is not offered again; "skip" is not.
    Raises ValidationError (nothing saved) if a score is not a half-star value or a rated movie
    does not exist. ``answers`` keys are ids as parse_id returns them.
    """
    scores = {}
    for movie_id, answer in answers.items():
        if answer in (HAVE_NOT_SEEN, SKIP, ""):
            continue
        scores[movie_id] = catalog_services.validate_score(answer)
    movies = Movie.objects.in_bulk(scores)
    with transaction.atomic():
        for movie_id, score in scores.items():
            if movie_id not in movies:
                raise ValidationError(f"There is no movie #{movie_id}.")
            if user.is_authenticated:
                catalog_services.rate_movie(user=user, movie=movies[movie_id], score=score)
            else:
                remember_guest_rating(session, movie=movies[movie_id], score=score)
    # Only films that exist are remembered (the list is read back into queries on every page).
    unseen = list(Movie.objects.in_bulk([movie_id for movie_id, answer in answers.items() if answer == HAVE_NOT_SEEN]))
    if unseen:
        session[DISMISSED_SESSION_KEY] = sorted(set(session.get(DISMISSED_SESSION_KEY, [])) | set(unseen))
    return len(scores)


def dismissed_movie_ids(session) -> list[int]:
    """Movies answered "haven't seen" in this session (ids a database can hold only)."""
    return [movie_id for movie_id in session.get(DISMISSED_SESSION_KEY, []) if isinstance(movie_id, int) and 0 < movie_id <= MAX_ID]


def needs_onboarding(user) -> bool:
    """True for a signed-in user who has neither picked genres nor rated anything yet.

    Meant for the login redirect (send them to onboarding:start instead of home).
    """
    return (
        user.is_authenticated
        and not GenrePreference.objects.filter(user=user).exists()
        and not Rating.objects.filter(user=user).exists()
    )


def rated_count(user, session) -> int:
    """How many movies the user (or the guest, in this session) has rated."""
    if user.is_authenticated:
        return Rating.objects.filter(user=user).count()
    return len(guest_ratings(session))


# --- Guests -----------------------------------------------------------------------------------


def guest_ratings(session) -> dict[int, float]:
    """{movie id: score} a guest rated in this session, not yet saved to an account."""
    return {int(movie_id): score for movie_id, score in session.get(GUEST_RATINGS_SESSION_KEY, {}).items()}


def remember_guest_rating(session, *, movie, score) -> float:
    """Keep a guest's rating in the session (validated like any rating) until they sign up."""
    value = catalog_services.validate_score(score)
    stored = dict(session.get(GUEST_RATINGS_SESSION_KEY, {}))
    stored[str(movie.pk)] = value
    session[GUEST_RATINGS_SESSION_KEY] = stored
    return value


def forget_guest_rating(session, *, movie) -> None:
    """Drop a guest's rating of the movie from the session (nothing if there is none)."""
    stored = dict(session.get(GUEST_RATINGS_SESSION_KEY, {}))
    if stored.pop(str(movie.pk), None) is not None:
        session[GUEST_RATINGS_SESSION_KEY] = stored


def save_guest_ratings(*, user, session) -> int:
    """Move the session's guest ratings onto the user's account; returns how many were saved.

    A rating the guest gave wins over an older one on the account (it is the newer opinion).
    """
    pending = guest_ratings(session)
    if not pending:
        return 0
    movies = Movie.objects.in_bulk(pending)
    with transaction.atomic():
        for movie_id, score in pending.items():
            if movie_id in movies:
                catalog_services.rate_movie(user=user, movie=movies[movie_id], score=score)
    session.pop(GUEST_RATINGS_SESSION_KEY, None)
    return sum(1 for movie_id in pending if movie_id in movies)


@receiver(user_signed_up, dispatch_uid="onboarding_guest_ratings_at_signup")
@receiver(user_logged_in, dispatch_uid="onboarding_guest_ratings_at_login")
def _keep_guest_ratings(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        save_guest_ratings(user=user, session=request.session)


def all_genres():
    """Every genre, for the favourite-genres step."""
    return Genre.objects.annotate(movie_count=Count("movies")).filter(movie_count__gt=0).order_by("name")
