"""Training data from the site's database, read with values_list into numpy arrays.

Item features and content text: recommender.describe_items (genres, directors, top-billed
actors, frequent keywords and tags, decade), plus an identity feature per film (added in the
fit). User features: gender, age bucket and occupation where known, plus genre affinity
(genres picked at onboarding, and genres the user rates above their own mean, computed in the
fit), plus identity. No free text a user typed becomes a feature: an occupation counts only
when it is one of a fixed list (the profile's choices and MovieLens 1M's occupations).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from django.contrib.auth import get_user_model

from accounts.models import User as SiteUser
from catalog.importers.formats import ML1M_OCCUPATIONS
from catalog.models import CastMember, Movie, NotInterested, Rating, Tag
from recommendations.models import GenrePreference
from recommendations.recommender import TOP_BILLED, TrainingData, describe_items


def age_bucket(birth_year: int | None, today: dt.date | None = None) -> str | None:
    if not birth_year:
        return None
    age = (today or dt.date.today()).year - birth_year
    for limit, label in ((18, "under-18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55")):
        if age < limit:
            return label
    return "56+"


# Occupations that may become a feature (compared in lower case): the site's list and MovieLens 1M's.
FEATURE_OCCUPATIONS = frozenset(
    value.lower() for value in (*SiteUser.Occupation.values, *ML1M_OCCUPATIONS.values())
)


def user_feature_names(*, gender: str = "", birth_year: int | None = None, occupation: str = "") -> list[str]:
    """Demographic feature names of one user (empty or unlisted values are simply absent)."""
    names = []
    if gender:
        names.append(f"gender:{gender}")
    bucket = age_bucket(birth_year)
    if bucket:
        names.append(f"age:{bucket}")
    occupation = occupation.strip().lower()
    if occupation in FEATURE_OCCUPATIONS:
        names.append(f"occupation:{occupation}")
    return names


def load_training_data() -> TrainingData:
    """Every movie (rated or not, so new films are recommendable by features) and rating."""
    movies = list(Movie.objects.order_by("pk").values_list("pk", "title", "year", "synopsis"))
    item_keys = np.array([m[0] for m in movies], dtype=np.int64)
    item_pos = {pk: i for i, pk in enumerate(item_keys.tolist())}
    n_items = len(movies)

    genres = [[] for _ in range(n_items)]
    directors = [[] for _ in range(n_items)]
    actors = [[] for _ in range(n_items)]
    keywords = [[] for _ in range(n_items)]
    for movie_id, name in Movie.genres.through.objects.values_list("movie_id", "genre__name"):
        genres[item_pos[movie_id]].append(name)
    for movie_id, name in Movie.directors.through.objects.values_list("movie_id", "director__name"):
        directors[item_pos[movie_id]].append(name)
    cast = CastMember.objects.filter(order__lt=TOP_BILLED).order_by("movie_id", "order")
    for movie_id, name in cast.values_list("movie_id", "actor__name"):
        actors[item_pos[movie_id]].append(name)
    for movie_id, name in Movie.keywords.through.objects.values_list("movie_id", "keyword__name"):
        keywords[item_pos[movie_id]].append(name)
    tags = [[] for _ in range(n_items)]
    for movie_id, tag in Tag.objects.values_list("movie_id", "tag"):
        tags[item_pos[movie_id]].append(tag.strip().lower())
    features, texts = describe_items(genres, directors, actors, keywords, tags, [m[2] for m in movies],
                                     [m[3] for m in movies])

    # One query: ratings written while a refit reads must not make the arrays differ in length.
    rows = list(Rating.objects.order_by("pk").values_list("user_id", "movie_id", "score", "updated_at"))
    ids = np.array([row[:3] for row in rows], dtype=np.float64).reshape(-1, 3)
    timestamps = np.array([row[3].timestamp() for row in rows])
    del rows
    rated_user_ids = np.unique(ids[:, 0]).astype(np.int64)
    User = get_user_model()
    profile_rows = list(User.objects.filter(pk__in=rated_user_ids.tolist()).order_by("pk")
                        .values_list("pk", "gender", "birth_year", "occupation"))
    user_keys = np.array([row[0] for row in profile_rows], dtype=np.int64)
    user_pos = {pk: i for i, pk in enumerate(user_keys.tolist())}
    user_features = [user_feature_names(gender=g or "", birth_year=b, occupation=o or "") for _, g, b, o in profile_rows]
    for user_id, genre in GenrePreference.objects.filter(user_id__in=list(user_pos)).values_list("user_id", "genre__name"):
        user_features[user_pos[user_id]].append(f"likes:{genre}")
    # Both key arrays are sorted, so positions come from one vectorised search.
    users = np.searchsorted(user_keys, ids[:, 0].astype(np.int64))
    items = np.searchsorted(item_keys, ids[:, 1].astype(np.int64))
    scores = ids[:, 2].astype(np.float32)
    hidden = [(user_pos[u], item_pos[m]) for u, m in NotInterested.objects.values_list("user_id", "movie_id") if u in user_pos]
    hidden_arr = np.array(hidden, dtype=np.int64).reshape(-1, 2)
    return TrainingData(
        user_keys=user_keys, item_keys=item_keys, users=users, items=items, scores=scores, timestamps=timestamps,
        item_titles=[m[1] for m in movies], item_genres=genres,
        item_years=np.array([m[2] or 0 for m in movies], dtype=np.int32), item_features=features, item_text=texts,
        user_features=user_features, hidden_users=hidden_arr[:, 0], hidden_items=hidden_arr[:, 1],
    )
