"""Selectors that read: top-N, explanations, similar, trending and predicted stars.

All of them run over the current published model held in process memory (current_model());
a request never trains, and loads from storage only when a newer version has been published.
"""
from __future__ import annotations

import logging
import pickle
import random
import threading
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Avg, Count, Q, prefetch_related_objects

from catalog.models import (
    Actor,
    Director,
    Genre,
    Movie,
    NotInterested,
    Rating,
    WatchlistEntry,
)
from recommendations import engine, experiments, rerank, trending
from recommendations.models import DiscoveryPreference, GenrePreference, ModelVersion, UserVector

MODEL_CHECK_SECONDS = 5.0

logger = logging.getLogger(__name__)
LIKED_MIN = 4.0
# An explanation "because you rated X" needs X among this many nearest films of the recommended one.
NEIGHBOURS = 20
SIMILAR_TASTE = "Popular with people whose ratings resemble yours"


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
        self.neighbours: dict[int, np.ndarray] = {}  # item -> its NEIGHBOURS nearest, for this model

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
                    self.model, self.version_id, self.neighbours = None, None, {}
                else:
                    from recommendations.services import load_artifact

                    try:
                        self.model = load_artifact(ModelVersion.objects.get(pk=current[0]))
                        self.version_id, self.neighbours = current, {}
                    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as error:
                        # A missing or unreadable artifact must not take the site down: keep what
                        # was served (popular films if nothing) and try again at the next check.
                        logger.error("Model version %s cannot be loaded (%s: %s); serving the previous model "
                                     "or popular films", current[0], type(error).__name__, error)
            self.checked_at = now
        return self.model


_current = _CurrentModel()


def current_model():
    """The loaded current model, or None when no version has been published."""
    return _current.get()


_arm_models: dict[int, object] = {}  # version id -> loaded model, for experiment arms
_arm_lock = threading.Lock()


def expire_current_model() -> None:
    """Make the next current_model() call re-check the current version at once (and let go of
    the experiment arms' loaded models), and read the cache's version pointer afresh."""
    from recommendations.cache import expire_version_pointer  # cache imports this module

    _current.expire()
    _arm_models.clear()
    expire_version_pointer()


def model_for_user(user):
    """The model serving this user: their experiment arm's version while one runs (loaded once per
    process), else the current one."""
    serving = experiments.serving_for(user)
    model = current_model()
    if serving is None or serving.version_id is None or getattr(model, "version_id", None) == serving.version_id:
        return model
    with _arm_lock:
        if serving.version_id not in _arm_models:
            from recommendations.services import load_artifact

            version = ModelVersion.objects.filter(pk=serving.version_id).exclude(artifact="").first()
            if version is None:
                return model
            if len(_arm_models) >= 2:  # an experiment has two arms: older arms' models are let go
                _arm_models.clear()
            _arm_models[serving.version_id] = load_artifact(version)
        return _arm_models[serving.version_id]


def nearest_items(model, items) -> dict[int, np.ndarray]:
    """{item: its NEIGHBOURS nearest films (Recommender.similar_items)}, remembered per loaded model."""
    memo = _current.neighbours if model is _current.model else {}
    missing = sorted({int(i) for i in items} - set(memo))
    if missing:
        best, _ = model.similar_items(np.array(missing), NEIGHBOURS)
        memo.update(zip(missing, best))
    return {int(i): memo[int(i)] for i in items}


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
    """The LightFM prior's feature names: the profile features plus the genres the user's own
    ratings favour (cold-start prior)."""
    names = profile_features(user)
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


def discovery_level(user) -> int:
    """The user's remembered discovery dial position (rerank.DEFAULT_DISCOVERY if never moved)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return rerank.DEFAULT_DISCOVERY
    level = DiscoveryPreference.objects.filter(user_id=user.pk).values_list("level", flat=True).first()
    if level is None:
        override = experiments.discovery_override(user)  # the user's experiment arm's position
        return rerank.DEFAULT_DISCOVERY if override is None else override
    return level


def picked_genre_names(user) -> list[str]:
    """The genres the user picked at onboarding."""
    return list(GenrePreference.objects.filter(user_id=user.pk).values_list("genre__name", flat=True))


def profile_features(user, picked: list[str] | None = None) -> list[str]:
    """The user's feature names as the model was trained with them (demographics and the genres
    picked at onboarding): what the neural user tower reads besides the ratings."""
    from recommendations.dataset import user_feature_names

    picked = picked_genre_names(user) if picked is None else picked
    names = user_feature_names(gender=getattr(user, "gender", "") or "", birth_year=getattr(user, "birth_year", None),
                               occupation=getattr(user, "occupation", "") or "")
    return names + [f"likes:{g}" for g in picked]


def _genre_vocabulary(model) -> dict[str, int]:
    return {g: j for j, g in enumerate(sorted(model.genre_masks))}


def recommend_for_user(user, *, n: int = 20, genre=None, year_from: int | None = None, year_to: int | None = None,
                       discovery: int | None = None) -> list[Recommendation]:
    """The user's top-N: never a film they rated or hid; optional genre and year range.

    The model's scores are re-ranked (recommendations.rerank): calibrated to the genres of the
    films the user liked and the genres they picked (not within a one-genre row), and moved along
    the discovery dial (``discovery``, default: the user's remembered position).
    Falls back to the most popular films when no model is published or the user is anonymous.
    While an experiment runs, the user's arm's model version serves them (model_for_user).
    """
    model = model_for_user(user)
    genre_name = _genre_name(genre)
    if model is None or user is None or not getattr(user, "is_authenticated", False):
        return _popular_fallback(user, n=n, genre_name=genre_name, year_from=year_from, year_to=year_to)
    state = load_user_state(user, model)
    picked = picked_genre_names(user)
    level = discovery_level(user) if discovery is None else discovery
    features = profile_features(user, picked)
    scores = model.blended_scores(state.vector, state.items, state.scores, features).astype(np.float64)
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
    vocabulary = _genre_vocabulary(model)
    liked = state.items[engine.is_positive(state.scores, float(state.scores.mean()))] if len(state.items) else state.items
    target = rerank.user_target(model.item_genres, vocabulary, liked, picked)
    best = rerank.rerank(scores, served_window(n), item_genres=model.item_genres, popularity=model.popularity, target=target,
                         vocabulary=vocabulary, strength=0.0 if genre_name else rerank.strength_for(len(state.rated_ids)),
                         head=rerank.head_for(len(state.rated_ids)),
                         discovery=level).tolist()
    movies = Movie.objects.in_bulk([int(model.item_keys[i]) for i in best])
    best, stars = served_picks(model, user.pk, state, features, best, movies, n)
    if not best:
        return _popular_fallback(user, n=n, genre_name=genre_name, year_from=year_from, year_to=year_to)
    explainer = Explainer(model, state, picked)
    reasons = explainer.explain_many(best)
    return [Recommendation(movies[int(model.item_keys[i])], float(scores[i]), round(float(s), 1), reasons[i])
            for i, s in zip(best, stars)]


def served_window(n: int) -> int:
    """How many re-ranked films the site chooses a list of n from (rerank.served_window)."""
    return rerank.served_window(n, settings.RECOMMENDER_CACHE_TOP_N)


def served_picks(model, user_pk, state: UserState, features, best: list[int], movies: dict, n: int):
    """(the first n of the re-ranked ``best`` that may be served, their predicted stars): films
    still in the catalogue (``movies``), not rated or hidden since the model was trained, those
    predicted below rerank.pick_min_stars after the others."""
    best = [i for i in best if int(model.item_keys[i]) in movies and int(model.item_keys[i]) not in state.rated_ids
            and int(model.item_keys[i]) not in state.hidden_ids]
    if not best:
        return [], np.empty(0)
    stars = model.predicted_stars(user_pk, np.array(best), state.items, state.scores, features)
    best, stars = rerank.demote_unlikely(best, stars, rerank.pick_min_stars(state.scores))
    return best[:n].tolist(), stars[:n]


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
    """True reasons, from the user's own ratings and the model's nearest neighbours, most specific first:

    1. a director of the film whose films the user rates highly (two or more rated, LIKED_MIN on average);
    2. "because you rated X": X rated LIKED_MIN or more, among the film's NEIGHBOURS nearest films in
       the model, and sharing a genre or a director with it;
    3. genres of the film the user rates highly (two or more rated, LIKED_MIN and their own average
       or more), else genres they picked at onboarding;
    4. otherwise the collaborative reason: popular with people whose ratings resemble yours.
    """

    def __init__(self, model, state: UserState, picked_genres=()):
        self.model = model
        liked = state.scores >= LIKED_MIN
        self.liked = dict(zip(state.items[liked].tolist(), state.scores[liked].tolist()))
        mean = float(state.scores.mean()) if len(state.scores) else LIKED_MIN
        by_director: dict[str, list[float]] = {}
        by_genre: dict[str, list[float]] = {}
        for i, s in zip(state.items.tolist(), state.scores.tolist()):
            for d in model.item_people[i]:
                by_director.setdefault(d, []).append(s)
            for g in model.item_genres[i]:
                by_genre.setdefault(g, []).append(s)
        self.directors = {d for d, ss in by_director.items() if len(ss) >= 2 and np.mean(ss) >= LIKED_MIN}
        self.genres = {g: float(np.mean(ss)) for g, ss in by_genre.items()
                       if len(ss) >= 2 and np.mean(ss) >= max(LIKED_MIN, mean)}
        self.picked = list(picked_genres)
        self.has_ratings = bool(len(state.items))

    def explain_many(self, items) -> dict[int, str]:
        """{item: explanation} for several films (their neighbours looked up at once)."""
        neighbours = nearest_items(self.model, items) if self.liked else {}
        return {i: self.explain(i, neighbours.get(i, ())) for i in items}

    def explain(self, item: int, neighbours=()) -> str:
        model = self.model
        for d in model.item_people[item]:
            if d in self.directors:
                return f"Directed by {d.split(':', 1)[1]}, whom you rate highly"
        genres, people = set(model.item_genres[item]), set(model.item_people[item])
        for anchor in np.asarray(neighbours).tolist():
            if anchor in self.liked and (genres & set(model.item_genres[anchor]) or people & set(model.item_people[anchor])):
                return f"Because you rated {model.item_titles[anchor]} {stars_text(self.liked[anchor])}"
        rated_highly = sorted((g for g in genres if g in self.genres), key=lambda g: (-self.genres[g], g))
        if rated_highly:
            return f"Because you rate {' and '.join(rated_highly[:2])} films highly"
        picked = [g for g in self.picked if g in genres]
        if picked:
            return f"You picked {' and '.join(picked[:2])} as favourite genres" if len(picked) > 1 else \
                f"You picked {picked[0]} as a favourite genre"
        return SIMILAR_TASTE if self.has_ratings else "Popular on movierec"


# ----------------------------------------------------------------------------- other lists


def predicted_rating(user, movie, *, ratings: dict[int, float] | None = None,
                     picked: list[str] | None = None) -> float | None:
    """Predicted stars (0.5–5) for the user and film from the served stars blend, with the user's
    current ratings; None if unknown. ``ratings`` ({film id: stars}, all of them) and ``picked``
    (the names of their picked genres): the user's, when the caller read them already."""
    return predicted_stars_map(user, [movie], ratings=ratings, picked=picked).get(movie.pk)


def similar_movies(movie, *, n: int = 12, user=None) -> list[Movie]:
    """Films like this one (Recommender.similar_items: content, co-rating, genre overlap); without a
    model, the films sharing most genres and directors with it. ``user``: serve from their
    experiment arm's model version."""
    keys = similar_movie_ids(movie, n=n, user=user)
    movies = Movie.objects.in_bulk(keys)
    return [movies[k] for k in keys if k in movies]


SIMILAR_IDS_SECONDS = 60 * 60


def similar_movie_ids_key(movie, *, n: int = 12, user=None) -> str | None:
    """Where similar_movie_ids keeps its answer (None: not kept, a model never published)."""
    model = model_for_user(user) if user is not None else current_model()
    known = model is not None and movie.pk in model.item_index
    stamp = (f"v{model.version_id}" if model.version_id is not None else None) if known \
        else f"none-{movie.updated_at.timestamp() if getattr(movie, 'updated_at', None) else ''}"
    return None if stamp is None else f"recommendations:similar:{stamp}:{movie.pk}:{n}"


def similar_movie_ids(movie, *, n: int = 12, user=None, kept=None) -> list[int]:
    """The ids of similar_movies, best first. The same for every user of a model version: kept in
    the shared cache for MOVIE_PARTS_SECONDS under the version (without a model, under the film's
    updated_at, as its genres and directors are edited with it). ``kept``: the kept ids when the
    caller read them already (catalog.selectors.movie_page_parts)."""
    from django.core.cache import cache

    from catalog.selectors import MOVIE_PARTS_SECONDS

    model = model_for_user(user) if user is not None else current_model()
    known = model is not None and movie.pk in model.item_index
    key = similar_movie_ids_key(movie, n=n, user=user)
    ids = kept if kept is not None else (cache.get(key) if key is not None else None)
    if ids is not None:
        return ids
    if known:
        best, _ = model.similar_items(model.item_index[movie.pk], n + 5)
        keys = [int(model.item_keys[i]) for i in best.tolist()]
        present = set(Movie.objects.filter(pk__in=keys).values_list("pk", flat=True))
        ids = [k for k in keys if k in present][:n]
    else:
        genre_ids = list(movie.genres.values_list("pk", flat=True))
        director_ids = list(movie.directors.values_list("pk", flat=True))
        ids = [m.pk for m in (
            Movie.objects.exclude(pk=movie.pk)
            .filter(Q(genres__in=genre_ids) | Q(directors__in=director_ids))
            .annotate(shared=Count("genres", filter=Q(genres__in=genre_ids), distinct=True)
                      + 3 * Count("directors", filter=Q(directors__in=director_ids), distinct=True))
            .order_by("-shared", "-rating_count", "pk")[:n]
        )]
    if key is not None:  # a model fitted but never saved has no version to key it by
        # Under a model version the answer never changes (a film deleted since is left out by
        # whoever shows the ids): kept an hour; without a model, as long as the film's other parts.
        cache.set(key, ids, SIMILAR_IDS_SECONDS if known else MOVIE_PARTS_SECONDS)
    return ids


def trending_entries(*, n: int = 20, excluded: set[int] | None = None) -> list[tuple[Movie, str]]:
    """[(film, why it is trending)]: films gaining attention (recommendations.trending), then
    well-liked recent releases; minus ``excluded`` ids."""
    excluded = excluded or set()
    entries = [e for e in trending.current(n + len(excluded)) if e.movie_id not in excluded][:n]
    movies = Movie.objects.in_bulk([e.movie_id for e in entries])
    return [(movies[e.movie_id], trending.explanation(e)) for e in entries if e.movie_id in movies]


def trending_movies(*, n: int = 20) -> list[Movie]:
    """The trending films (see trending_entries)."""
    return [movie for movie, _ in trending_entries(n=n)]


# ----------------------------------------------------------------------------- fingerprint


_FINGERPRINT_SQL = """
SELECT r.n, r.films, r.stars, r.weighted, r.latest, h.n, h.films, h.latest, g.n, g.ids, g.mask, d.level
FROM (SELECT COUNT(*) AS n, SUM(movie_id) AS films, SUM(score) AS stars, SUM(movie_id * score) AS weighted,
             MAX(updated_at) AS latest FROM {rating} WHERE user_id = %s) r,
     (SELECT COUNT(*) AS n, SUM(movie_id) AS films, MAX(added_at) AS latest FROM {hidden} WHERE user_id = %s) h,
     (SELECT COUNT(*) AS n, SUM(genre_id) AS ids, SUM(CAST(1 AS BIGINT) << CAST(genre_id %% 62 AS INTEGER)) AS mask
      FROM {picked} WHERE user_id = %s) g,
     (SELECT MAX(level) AS level FROM {dial} WHERE user_id = %s) d
"""


def taste_fingerprint(user) -> tuple:
    """What a user's personal rows are computed from besides the model and the catalogue, in a
    few numbers: their ratings (count, sums of films and stars, latest change), hidden films,
    picked genres, discovery dial and demographics. A change of any of them changes it, so it
    keys cached rows; one query of aggregates, whatever the number of ratings."""
    from django.db import connection

    tables = {name: connection.ops.quote_name(model._meta.db_table) for name, model in (
        ("rating", Rating), ("hidden", NotInterested), ("picked", GenrePreference), ("dial", DiscoveryPreference))}
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(**tables), [user.pk] * 4)
        row = cursor.fetchone()
    return (*(str(value) for value in row), tuple(profile_features(user, picked=[])))


# ----------------------------------------------------------------------------- home rows


def excluded_movie_ids(user) -> set[int]:
    """Ids of the films the user rated or marked not interested: never recommended to them."""
    rated = Rating.objects.filter(user_id=user.pk).values_list("movie_id", flat=True)
    hidden = NotInterested.objects.filter(user_id=user.pk).values_list("movie_id", flat=True)
    return set(rated) | set(hidden)


def because_you_liked(user, *, n: int = 12, anchor: Movie | None = None, excluded: set[int] | None = None) -> tuple[Rating | None, list[Movie]]:
    """(the anchor rating, films similar to it the user has neither rated nor hidden nor is
    predicted to dislike (below rerank.pick_min_stars): "because you liked X" says they would like them).

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
    similar = similar_movies(rating.movie, n=n + len(excluded), user=user)
    model = model_for_user(user)
    if model is not None and rating.movie.pk in model.item_index:
        # The row says "because you rated X": only films that share a genre or a director with X
        # (without a model, similar_movies only finds such films).
        anchor = model.item_index[rating.movie.pk]
        genres, people = set(model.item_genres[anchor]), set(model.item_people[anchor])
        similar = [movie for movie in similar if movie.pk in model.item_index and (
            genres & set(model.item_genres[model.item_index[movie.pk]])
            or people & set(model.item_people[model.item_index[movie.pk]]))]
    similar = [movie for movie in similar if movie.pk not in excluded]
    stars = predicted_stars_map(user, similar)
    if stars:
        floor = rerank.pick_min_stars(list(Rating.objects.filter(user_id=user.pk).values_list("score", flat=True)))
        similar = [movie for movie in similar if stars.get(movie.pk, floor) >= floor]
    return rating, similar[:n]


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


def trending_for_user(user, *, n: int = 20, excluded: set[int] | None = None) -> list[tuple[Movie, str]]:
    """Trending entries minus the films the user rated or hid (all of them for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return trending_entries(n=n)
    return trending_entries(n=n, excluded=excluded_movie_ids(user) if excluded is None else excluded)


def predicted_stars_map(user, movies, *, ratings: dict[int, float] | None = None,
                        picked: list[str] | None = None) -> dict[int, float]:
    """{movie id: predicted stars} for many films at once (its reads: the user's ratings and picked
    genres, unless given as in predicted_rating); {} without a model."""
    model = model_for_user(user)
    known = [movie.pk for movie in movies if model is not None and movie.pk in model.item_index]
    if not known or not getattr(user, "is_authenticated", False):
        return {}
    rated = Rating.objects.filter(user_id=user.pk).values_list("movie_id", "score") if ratings is None else ratings.items()
    pairs = [(model.item_index[m], s) for m, s in rated if m in model.item_index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float32)
    values = model.predicted_stars(user.pk, np.array([model.item_index[pk] for pk in known]), items, scores,
                                   profile_features(user, picked=picked))
    return {pk: round(float(value), 1) for pk, value in zip(known, values)}


@dataclass
class Row:
    """One titled row of the signed-in home page."""
    key: str
    title: str
    items: list[Recommendation]


def _unscored_items(movies, explanation: str, stars: dict[int, float]) -> list[Recommendation]:
    return [Recommendation(movie, 0.0, stars.get(movie.pk), explanation) for movie in movies]


def by_predicted_stars(items: list[Recommendation]) -> list[Recommendation]:
    """The same films, highest predicted stars first (unknown last; ties keep their order)."""
    return sorted(items, key=lambda item: -item.predicted_stars if item.predicted_stars is not None else np.inf)


def home_rows(user, *, top_picks: list[Recommendation], n: int = 12, discovery: int | None = None) -> list[Row]:
    """The signed-in home page's rows, each item explained: top picks (as served from the
    cache), because you liked, more from your favourite person, trending, by genre (the first
    of the user's favourite genres with films left to show).

    Each row chooses its films its own way and shows them highest predicted stars first. Films
    the user rated or hid are in none of them; apart from the person row, a film shows in the
    first row that has it only (later rows draw from twice as many candidates to refill); empty
    rows are left out. ``discovery``: the dial position (default: the user's remembered one).
    """
    excluded = excluded_movie_ids(user)
    rows = [Row("top", "Top picks for you", [r for r in top_picks if r.movie.pk not in excluded])]
    anchor, similar = because_you_liked(user, n=2 * n, excluded=excluded)
    person, films = more_from_favourite_person(user, n=2 * n, excluded=excluded)
    trending_now = trending_for_user(user, n=2 * n, excluded=excluded)
    stars = predicted_stars_map(user, [*similar, *films, *(movie for movie, _ in trending_now)])
    if anchor is not None:
        rows.append(Row("because", f"Because you liked {anchor.movie.title}",
                        _unscored_items(similar, because_you_liked_explanation(anchor), stars)))
    if person is not None:
        role = "directed by" if isinstance(person, Director) else "starring"
        rows.append(Row("person", f"More from {person.name}",
                        _unscored_items(films, f"You rate films {role} {person.name} highly", stars)))
    rows.append(Row("trending", "Trending", [Recommendation(movie, 0.0, stars.get(movie.pk), why)
                                             for movie, why in trending_now]))
    shown: set[int] = set()
    for row in rows:
        if row.key != "person":  # that row is about the person: all their films belong in it
            row.items = [item for item in row.items if item.movie.pk not in shown]
        row.items = row.items[:n]
        shown |= {item.movie.pk for item in row.items}
    for genre in favourite_genres(user):  # the first favourite genre with films not shown yet
        picks = [r for r in recommend_for_user(user, n=2 * n, genre=genre, discovery=discovery)
                 if r.movie.pk not in shown][:n]
        if picks:
            rows.append(Row("genre", f"Top picks in {genre.name}", picks))
            break
    rows = [row for row in rows if row.items]
    for row in rows:
        row.items = by_predicted_stars(row.items)
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
