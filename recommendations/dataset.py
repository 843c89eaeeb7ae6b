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
from django.db import connection

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


RATING_COLUMNS = ("id", "user_id", "movie_id", "score", "updated_at")
CHUNK_ROWS = 200_000
# One row of PostgreSQL's binary COPY of (int8, int8, int8, float8, float8): a field count, then
# each field's length and big-endian value.
_COPY_ROW = np.dtype([("fields", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("user", ">i8"),
                      ("l2", ">i4"), ("movie", ">i8"), ("l3", ">i4"), ("score", ">f8"), ("l4", ">i4"), ("ts", ">f8")])
_COPY_HEADER = 19  # signature (11 bytes), flags (4), header extension length (4, always 0 here)


def read_ratings() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every rating as arrays (id, user id, movie id, stars float32, updated_at as Unix seconds), in id order.

    One statement, so the arrays describe one snapshot. On PostgreSQL a binary COPY parsed by
    numpy a few megabytes at a time; elsewhere values_list in chunks. Either way no Python
    object is kept per rating, so memory is the arrays themselves (29 bytes a rating).
    """
    parts = _copy_ratings() if connection.vendor == "postgresql" else _chunked_ratings()
    columns = [np.concatenate([part[c] for part in parts]) if parts else np.empty(0, dtype)
               for c, dtype in enumerate((np.int64, np.int64, np.int64, np.float32, np.float64))]
    del parts
    ids = columns[0]
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        order = np.argsort(ids, kind="stable")
        columns = [column[order] for column in columns]
    return tuple(columns)


def _part(ids, users, movies, scores, stamps) -> tuple:
    return (np.asarray(ids, np.int64), np.asarray(users, np.int64), np.asarray(movies, np.int64),
            np.asarray(scores, np.float32), np.asarray(stamps, np.float64))


def _copy_ratings() -> list[tuple]:
    table = Rating._meta.db_table
    sql = (f"COPY (SELECT id::int8, user_id::int8, movie_id::int8, score::float8, "
           f"extract(epoch FROM updated_at)::float8 FROM {table}) TO STDOUT (FORMAT binary)")
    parts, pending, header_left = [], bytearray(), _COPY_HEADER
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for block in copy:
            pending += block
            if header_left:
                skip = min(header_left, len(pending))
                del pending[:skip]
                header_left -= skip
            if len(pending) >= 1 << 23:
                parts.append(_parse_copy(pending))
    if len(pending) > 2:  # the last two bytes are the trailer (-1)
        parts.append(_parse_copy(pending))
    return parts


def _parse_copy(pending: bytearray) -> tuple:
    """Parse the whole rows at the start of pending (removing them)."""
    rows = len(pending) // _COPY_ROW.itemsize
    records = np.frombuffer(bytes(pending[: rows * _COPY_ROW.itemsize]), dtype=_COPY_ROW)
    del pending[: rows * _COPY_ROW.itemsize]
    records = records[records["fields"] == 5]  # the trailer's -1 is not a row
    return _part(records["id"], records["user"], records["movie"], records["score"], records["ts"])


def _chunked_ratings() -> list[tuple]:
    parts, chunk = [], []
    for row in Rating.objects.values_list(*RATING_COLUMNS).iterator(chunk_size=CHUNK_ROWS):
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            parts.append(_chunk_part(chunk))
            chunk = []
    if chunk:
        parts.append(_chunk_part(chunk))
    return parts


def _chunk_part(rows: list) -> tuple:
    ids, users, movies, scores, updated = zip(*rows)
    return _part(ids, users, movies, scores, [moment.timestamp() for moment in updated])


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
    rating_ids, user_ids, movie_ids, scores, timestamps = read_ratings()
    rated_user_ids = np.unique(user_ids)
    User = get_user_model()
    # Every account's profile, kept for those who rated (no query holding one parameter per user).
    profile_rows = list(User.objects.order_by("pk").values_list("pk", "gender", "birth_year", "occupation"))
    rated = set(rated_user_ids.tolist())
    profile_rows = [row for row in profile_rows if row[0] in rated]
    user_keys = np.array([row[0] for row in profile_rows], dtype=np.int64)
    user_pos = {pk: i for i, pk in enumerate(user_keys.tolist())}
    user_features = [user_feature_names(gender=g or "", birth_year=b, occupation=o or "") for _, g, b, o in profile_rows]
    for user_id, genre in GenrePreference.objects.filter(user_id__in=list(user_pos)).values_list("user_id", "genre__name"):
        user_features[user_pos[user_id]].append(f"likes:{genre}")
    # Both key arrays are sorted, so positions come from one vectorised search.
    users = np.searchsorted(user_keys, user_ids)
    del user_ids
    items = np.searchsorted(item_keys, movie_ids)
    del movie_ids
    hidden = [(user_pos[u], item_pos[m]) for u, m in NotInterested.objects.values_list("user_id", "movie_id") if u in user_pos]
    hidden_arr = np.array(hidden, dtype=np.int64).reshape(-1, 2)
    return TrainingData(
        user_keys=user_keys, item_keys=item_keys, users=users, items=items, scores=scores, timestamps=timestamps,
        item_titles=[m[1] for m in movies], item_genres=genres,
        item_years=np.array([m[2] or 0 for m in movies], dtype=np.int32), item_features=features, item_text=texts,
        user_features=user_features, hidden_users=hidden_arr[:, 0], hidden_items=hidden_arr[:, 1],
    )
