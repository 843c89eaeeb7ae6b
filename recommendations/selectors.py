"""Selectors that read: top-N, explanations, similar, trending and predicted stars.

All of them run over the current published model held in process memory (current_model());
a request never trains, and loads from storage only when a newer version has been published.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Avg, Count, Max, Q, prefetch_related_objects

from catalog.models import (
    Actor,
    Director,
    Genre,
    Movie,
    NotInterested,
    Rating,
    WatchlistEntry,
)
from recommendations import engine
from recommendations.models import GenrePreference, ModelVersion, UserVector

MODEL_CHECK_SECONDS = 5.0
TRENDING_DAYS = 30
LIKED_MIN = 4.0
TRENDING_EXPLANATION = "Among the most rated on movierec lately"


@dataclass
class Recommendation:
    movie: Movie
    score: float
    predicted_stars: float | None
    explanation: str


class _CurrentModel:
    """The process-wide loaded model; re-checks the current version id at most every few seconds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.model = None
        self.version_id = None
        self.checked_at = 0.0

    def expire(self):
        self.checked_at = 0.0

    def get(self):
        now = time.monotonic()
        if now - self.checked_at < MODEL_CHECK_SECONDS:
            return self.model
        with self.lock:
            # (pk, published_at) identifies a publication even if a pk is ever reused.
            current = ModelVersion.objects.filter(is_current=True).values_list("pk", "published_at").first()
            if current != self.version_id:
                if current is None:
                    self.model = None
                else:
                    from recommendations.services import load_artifact

                    self.model = load_artifact(ModelVersion.objects.get(pk=current[0]))
                self.version_id = current
            self.checked_at = now
        return self.model


_current = _CurrentModel()


def current_model():
    """The loaded current model, or None when no version has been published."""
    return _current.get()


def expire_current_model() -> None:
    """Make the next current_model() call re-check the current version at once."""
    _current.expire()


def stars_text(score: float) -> str:
    return "★" * int(score) + ("½" if score % 1 else "")


# ----------------------------------------------------------------------------- user state


@dataclass
class UserState:
    rated_ids: dict  # movie_id -> score
    hidden_ids: set
    items: np.ndarray  # model indices of rated movies known to the model
    scores: np.ndarray
    hidden_items: np.ndarray
    vector: np.ndarray | None


def user_feature_names_for(user, model, items, scores) -> list[str]:
    """Demographics plus genre affinity from the user's own ratings (cold-start prior)."""
    from recommendations.dataset import user_feature_names

    names = user_feature_names(gender=getattr(user, "gender", "") or "", birth_year=getattr(user, "birth_year", None),
                               occupation=getattr(user, "occupation", "") or "")
    names += [f"likes:{g}" for g in GenrePreference.objects.filter(user_id=user.pk).values_list("genre__name", flat=True)]
    if len(items):
        mean = float(scores.mean())
        liked = items[engine.is_positive(scores, mean)]
        counts = {}
        for i in liked.tolist():
            for g in model.item_genres[i]:
                counts[g] = counts.get(g, 0) + 1
        names += [f"likes:{g}" for g in sorted(counts, key=lambda g: -counts[g])[:4]]
    return names


def load_user_state(user, model, *, use_stored=True) -> UserState:
    rated_ids = dict(Rating.objects.filter(user_id=user.pk).values_list("movie_id", "score"))
    hidden_ids = set(NotInterested.objects.filter(user_id=user.pk).values_list("movie_id", flat=True))
    if model is None:
        return UserState(rated_ids, hidden_ids, np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64), None)
    pairs = [(model.item_index[m], s) for m, s in rated_ids.items() if m in model.item_index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float32)
    hidden_items = np.array([model.item_index[m] for m in hidden_ids if m in model.item_index], dtype=np.int64)
    vector = None
    if use_stored:
        stored = UserVector.objects.filter(user_id=user.pk, model_version_id=model.version_id).values_list("vector", flat=True).first()
        if stored is not None:
            vector = np.frombuffer(bytes(stored), dtype=np.float32)
        elif user.pk in model.user_index:
            vector = model.user_vectors[model.user_index[user.pk]]
    if vector is None:
        vector = fold_in_user(user, model, items, scores, hidden_items)
    return UserState(rated_ids, hidden_ids, items, scores, hidden_items, vector)


def fold_in_user(user, model, items, scores, hidden_items) -> np.ndarray:
    """The user's vector re-estimated from their current ratings/hidden films (milliseconds)."""
    prior = model.prior_vector(user.pk, user_feature_names_for(user, model, items, scores))
    return model.fold_in(prior, items, scores, hidden_items)


# ----------------------------------------------------------------------------- top-N


def _genre_name(genre) -> str | None:
    if genre is None or genre == "":
        return None
    if isinstance(genre, Genre):
        return genre.name
    found = Genre.objects.filter(Q(slug=genre) | Q(name__iexact=genre)).values_list("name", flat=True).first()
    return found or str(genre)


def recommend_for_user(user, *, n: int = 20, genre=None, year_from: int | None = None, year_to: int | None = None) -> list[Recommendation]:
    """The user's top-N: never a film they rated or hid; optional genre and year range.

    Falls back to the most popular films when no model is published or the user is anonymous.
    """
    model = current_model()
    genre_name = _genre_name(genre)
    if model is None or user is None or not getattr(user, "is_authenticated", False):
        return _popular_fallback(user, n=n, genre_name=genre_name, year_from=year_from, year_to=year_to)
    state = load_user_state(user, model)
    scores = model.blended_scores(state.vector, state.items, state.scores).astype(np.float64)
    allowed = np.ones(model.n_items, bool)
    allowed[state.items] = False
    allowed[state.hidden_items] = False
    if genre_name is not None:
        allowed &= model.genre_masks.get(genre_name, np.zeros(model.n_items, bool))
    if year_from is not None:
        allowed &= model.item_years >= year_from
    if year_to is not None:
        allowed &= (model.item_years <= year_to) & (model.item_years > 0)
    scores[~allowed] = -np.inf
    best = [i for i in engine.top_k(scores, n + 10).tolist() if np.isfinite(scores[i])]
    movies = Movie.objects.in_bulk([int(model.item_keys[i]) for i in best])
    # Films rated/hidden since the model was trained are excluded above through the state.
    best = [i for i in best if int(model.item_keys[i]) in movies and int(model.item_keys[i]) not in state.rated_ids
            and int(model.item_keys[i]) not in state.hidden_ids][:n]
    if not best:
        return _popular_fallback(user, n=n, genre_name=genre_name, year_from=year_from, year_to=year_to)
    stars = model.predicted_stars(user.pk, np.array(best), state.items, state.scores)
    explainer = Explainer(model, state)
    return [Recommendation(movies[int(model.item_keys[i])], float(scores[i]), round(float(s), 1), explainer.explain(i))
            for i, s in zip(best, stars)]


def _popular_fallback(user, *, n, genre_name, year_from, year_to) -> list[Recommendation]:
    movies = Movie.objects.all()
    if user is not None and getattr(user, "is_authenticated", False):
        movies = movies.exclude(ratings__user_id=user.pk).exclude(
            pk__in=NotInterested.objects.filter(user_id=user.pk).values("movie_id"))
    if genre_name:
        movies = movies.filter(genres__name=genre_name)
    if year_from is not None:
        movies = movies.filter(year__gte=year_from)
    if year_to is not None:
        movies = movies.filter(year__lte=year_to)
    movies = movies.order_by("-rating_count", "-rating_mean", "pk")[:n]
    return [Recommendation(m, float(m.rating_count), None, "Popular on movierec") for m in movies]


class Explainer:
    """Reasons drawn from the user's own ratings and the model's neighbours."""

    def __init__(self, model, state: UserState):
        self.model = model
        liked = state.scores >= LIKED_MIN
        if not liked.any() and len(state.scores):
            liked = state.scores >= state.scores.max()
        self.liked_items = state.items[liked]
        self.liked_scores = state.scores[liked]
        directors: dict[str, list[float]] = {}
        for i, s in zip(state.items.tolist(), state.scores.tolist()):
            for d in model.item_people[i]:
                directors.setdefault(d, []).append(s)
        self.favourite_directors = {d for d, ss in directors.items() if np.mean(ss) >= LIKED_MIN}
        genre_counts: dict[str, int] = {}
        for i in self.liked_items.tolist():
            for g in model.item_genres[i]:
                genre_counts[g] = genre_counts.get(g, 0) + 1
        self.genre_counts = genre_counts

    def explain(self, item: int) -> str:
        model = self.model
        for d in model.item_people[item]:
            if d in self.favourite_directors:
                return f"Directed by {d.split(':', 1)[1]}, whom you rate highly"
        if len(self.liked_items):
            ease_pos = model.ease_position[item]
            anchors_pos = model.ease_position[self.liked_items]
            if ease_pos >= 0 and (anchors_pos >= 0).any():
                weights = np.where(anchors_pos >= 0, model.ease_weights[np.maximum(anchors_pos, 0), ease_pos], -np.inf)
                j = int(np.argmax(weights))
                if weights[j] > 0:
                    anchor, stars = model.item_titles[self.liked_items[j]], float(self.liked_scores[j])
                    if stars >= 4.5:
                        return f"Because you rated {anchor} {stars_text(stars)}"
                    return f"Popular with people who liked {anchor}"
            similarity = model.item_unit[self.liked_items] @ model.item_unit[item]
            j = int(np.argmax(similarity))
            if similarity[j] > 0:
                anchor = self.liked_items[j]
                return f"Because you rated {model.item_titles[anchor]} {stars_text(float(self.liked_scores[j]))}"
        shared = [g for g in model.item_genres[item] if g in self.genre_counts]
        if shared:
            shared.sort(key=lambda g: -self.genre_counts[g])
            return f"Because you like {' and '.join(shared[:2])} films"
        return "Popular on movierec"


# ----------------------------------------------------------------------------- other lists


def predicted_rating(user, movie) -> float | None:
    """Predicted stars (0.5–5) for the user and film, from the biased MF, folded in; None if unknown."""
    model = current_model()
    if model is None or movie.pk not in model.item_index:
        return None
    rated = dict(Rating.objects.filter(user_id=user.pk).values_list("movie_id", "score"))
    pairs = [(model.item_index[m], s) for m, s in rated.items() if m in model.item_index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float32)
    value = model.predicted_stars(user.pk, np.array([model.item_index[movie.pk]]), items, scores)[0]
    return round(float(value), 1)


def similar_movies(movie, *, n: int = 12) -> list[Movie]:
    """Films like this one: TF-IDF content cosine blended with LightFM item-embedding cosine."""
    model = current_model()
    if model is not None and movie.pk in model.item_index:
        best, _ = model.similar_items(model.item_index[movie.pk], n + 5)
        keys = [int(model.item_keys[i]) for i in best.tolist()]
        movies = Movie.objects.in_bulk(keys)
        return [movies[k] for k in keys if k in movies][:n]
    genre_ids = list(movie.genres.values_list("pk", flat=True))
    director_ids = list(movie.directors.values_list("pk", flat=True))
    return list(
        Movie.objects.exclude(pk=movie.pk)
        .filter(Q(genres__in=genre_ids) | Q(directors__in=director_ids))
        .annotate(shared=Count("genres", filter=Q(genres__in=genre_ids), distinct=True)
                  + 3 * Count("directors", filter=Q(directors__in=director_ids), distinct=True))
        .order_by("-shared", "-rating_count", "pk")[:n]
    )


def trending_movies(*, n: int = 20, days: int = TRENDING_DAYS) -> list[Movie]:
    """Most-rated films of the last ``days`` days of rating activity (well liked first on ties)."""
    latest = Rating.objects.aggregate(latest=Max("updated_at"))["latest"]
    if latest is None:
        return list(Movie.objects.order_by("-rating_count", "pk")[:n])
    rows = (Rating.objects.filter(updated_at__gte=latest - timedelta(days=days))
            .values("movie_id").annotate(n=Count("id"), mean=Avg("score")).order_by("-n", "-mean", "movie_id")[:n])
    ids = [r["movie_id"] for r in rows]
    movies = Movie.objects.in_bulk(ids)
    return [movies[i] for i in ids if i in movies]


# ----------------------------------------------------------------------------- home rows


def excluded_movie_ids(user) -> set[int]:
    """Ids of the films the user rated or marked not interested: never recommended to them."""
    rated = Rating.objects.filter(user_id=user.pk).values_list("movie_id", flat=True)
    hidden = NotInterested.objects.filter(user_id=user.pk).values_list("movie_id", flat=True)
    return set(rated) | set(hidden)


def because_you_liked(user, *, n: int = 12, anchor: Movie | None = None, excluded: set[int] | None = None) -> tuple[Rating | None, list[Movie]]:
    """(the anchor rating, films similar to it the user has neither rated nor hidden).

    The anchor is ``anchor`` if given (None as rating when the user has not rated it), else the
    user's most recently rated film scored LIKED_MIN or more; (None, []) when there is none.
    """
    ratings = Rating.objects.filter(user_id=user.pk).select_related("movie").order_by("-updated_at", "-id")
    if anchor is None:
        rating = ratings.filter(score__gte=LIKED_MIN).first()
    else:
        rating = ratings.filter(movie=anchor).first()
    if rating is None:
        return None, []
    excluded = excluded_movie_ids(user) if excluded is None else excluded
    similar = similar_movies(rating.movie, n=n + len(excluded))
    return rating, [movie for movie in similar if movie.pk not in excluded][:n]


def because_you_liked_explanation(rating: Rating) -> str:
    return f"Because you rated {rating.movie.title} {stars_text(rating.score)}"


def favourite_person(user):
    """The director (else actor) whose films the user rates highest on average — at least two
    rated films averaging LIKED_MIN or more; None when there is none."""
    for model, through in ((Director, "movies__ratings"), (Actor, "movies__ratings")):
        person = (
            model.objects.filter(**{f"{through}__user_id": user.pk})
            .annotate(rated=Count(through), mean=Avg(f"{through}__score"))
            .filter(rated__gte=2, mean__gte=LIKED_MIN)
            .order_by("-mean", "-rated", "pk")
            .first()
        )
        if person is not None:
            return person
    return None


def more_from_favourite_person(user, *, n: int = 12, excluded: set[int] | None = None):
    """(favourite director or actor, their films the user has neither rated nor hidden, most
    rated first); (None, []) when the user has no such favourite."""
    person = favourite_person(user)
    if person is None:
        return None, []
    excluded = excluded_movie_ids(user) if excluded is None else excluded
    movies = (person.movies.exclude(pk__in=excluded)
              .order_by("-rating_count", "-rating_mean", "pk")[:n])
    return person, list(movies)


def favourite_genres(user, *, limit: int = 3) -> list[Genre]:
    """The genres of the films the user rated LIKED_MIN or more, most such films first."""
    return list(
        Genre.objects.filter(movies__ratings__user_id=user.pk, movies__ratings__score__gte=LIKED_MIN)
        .annotate(liked=Count("movies__ratings")).order_by("-liked", "name")[:limit]
    )


def trending_for_user(user, *, n: int = 20, excluded: set[int] | None = None) -> list[Movie]:
    """Trending films minus the ones the user rated or hid (all of them for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return trending_movies(n=n)
    excluded = excluded_movie_ids(user) if excluded is None else excluded
    return [movie for movie in trending_movies(n=n + len(excluded)) if movie.pk not in excluded][:n]


def predicted_stars_map(user, movies) -> dict[int, float]:
    """{movie id: predicted stars} for many films at once (one query); {} without a model."""
    model = current_model()
    known = [movie.pk for movie in movies if model is not None and movie.pk in model.item_index]
    if not known or not getattr(user, "is_authenticated", False):
        return {}
    rated = Rating.objects.filter(user_id=user.pk).values_list("movie_id", "score")
    pairs = [(model.item_index[m], s) for m, s in rated if m in model.item_index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float32)
    values = model.predicted_stars(user.pk, np.array([model.item_index[pk] for pk in known]), items, scores)
    return {pk: round(float(value), 1) for pk, value in zip(known, values)}


@dataclass
class Row:
    """One titled row of the signed-in home page."""
    key: str
    title: str
    items: list[Recommendation]


def _unscored_items(user, movies, explanation: str, stars: dict[int, float]) -> list[Recommendation]:
    return [Recommendation(movie, 0.0, stars.get(movie.pk), explanation) for movie in movies]


def home_rows(user, *, top_picks: list[Recommendation], n: int = 12) -> list[Row]:
    """The signed-in home page's rows, each item explained: top picks (as served from the
    cache), because you liked, more from your favourite person, trending, by genre (the first
    of the user's favourite genres with films left to show).

    Films the user rated or hid are in none of them; apart from the person row, a film shows in
    the first row that has it only (later rows draw from twice as many candidates to refill);
    empty rows are left out.
    """
    excluded = excluded_movie_ids(user)
    rows = [Row("top", "Top picks for you", [r for r in top_picks if r.movie.pk not in excluded])]
    anchor, similar = because_you_liked(user, n=2 * n, excluded=excluded)
    person, films = more_from_favourite_person(user, n=2 * n, excluded=excluded)
    trending = trending_for_user(user, n=2 * n, excluded=excluded)
    stars = predicted_stars_map(user, [*similar, *films, *trending])
    if anchor is not None:
        rows.append(Row("because", f"Because you liked {anchor.movie.title}",
                        _unscored_items(user, similar, because_you_liked_explanation(anchor), stars)))
    if person is not None:
        role = "directed by" if isinstance(person, Director) else "starring"
        rows.append(Row("person", f"More from {person.name}",
                        _unscored_items(user, films, f"You rate films {role} {person.name} highly", stars)))
    rows.append(Row("trending", "Trending", _unscored_items(user, trending, TRENDING_EXPLANATION, stars)))
    shown: set[int] = set()
    for row in rows:
        if row.key != "person":  # that row is about the person: all their films belong in it
            row.items = [item for item in row.items if item.movie.pk not in shown]
        row.items = row.items[:n]
        shown |= {item.movie.pk for item in row.items}
    for genre in favourite_genres(user):  # the first favourite genre with films not shown yet
        picks = [r for r in recommend_for_user(user, n=2 * n, genre=genre) if r.movie.pk not in shown][:n]
        if picks:
            rows.append(Row("genre", f"Top picks in {genre.name}", picks))
            break
    rows = [row for row in rows if row.items]
    prefetch_related_objects([item.movie for row in rows for item in row.items], "genres")
    return rows


# ----------------------------------------------------------------------------- watchlist

TONIGHT_CHOICES = 5


def watchlist_by_prediction(user) -> list:
    """The user's watchlist entries, highest predicted stars first (unknown predictions last,
    most recently added first among equals); each entry gets a ``predicted_stars`` attribute."""
    entries = list(WatchlistEntry.objects.filter(user_id=user.pk).select_related("movie").order_by("-added_at", "-id"))
    stars = predicted_stars_map(user, [entry.movie for entry in entries])
    for entry in entries:
        entry.predicted_stars = stars.get(entry.movie_id)
    return sorted(entries, key=lambda entry: (entry.predicted_stars is None, -(entry.predicted_stars or 0)))


def pick_for_tonight(user, *, choices: int = TONIGHT_CHOICES, rng: random.Random | None = None):
    """One watchlist entry chosen at random among the ``choices`` best predicted; None if the
    watchlist is empty."""
    entries = watchlist_by_prediction(user)[:choices]
    return (rng or random).choice(entries) if entries else None
