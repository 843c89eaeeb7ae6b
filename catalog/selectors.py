"""Selectors that read the catalogue: popular and top-rated lists, browse, user lists.

Search lives in catalog.search.
"""
import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import F, FloatField, Prefetch, Sum, Value, prefetch_related_objects
from django.db.models.functions import Cast

from catalog.models import CastMember, Genre, Movie, NotInterested, Rating, WatchlistEntry

# Weight of the prior in the Bayesian average: a movie needs about this many ratings before its
# own mean counts as much as the catalogue-wide mean.
BAYESIAN_PRIOR_RATINGS = 10


# --- Lists -----------------------------------------------------------------------------------


def _with_listing_relations(queryset):
    return queryset.prefetch_related("genres")


def _filtered_movies(queryset, *, genre=None, year_from=None, year_to=None):
    if genre is not None:
        queryset = queryset.filter(genres__slug=getattr(genre, "slug", genre))
    if year_from is not None:
        queryset = queryset.filter(year__gte=year_from)
    if year_to is not None:
        queryset = queryset.filter(year__lte=year_to)
    return queryset


def popular_movies(n: int = 12) -> list:
    """The n most-rated movies."""
    return list(_with_listing_relations(Movie.objects.filter(rating_count__gt=0).order_by("-rating_count", "title"))[:n])


def with_bayesian_average(queryset):
    """Annotate `bayesian_average`: the mean shrunk towards the catalogue mean by the prior weight.

    bayesian = (C * m + count * mean) / (C + count), C = BAYESIAN_PRIOR_RATINGS, m = mean of all
    ratings. A movie with three 5-star ratings does not outrank one with thousands at 4.4.
    """
    totals = Movie.objects.aggregate(
        ratings=Sum("rating_count"), stars=Sum(F("rating_count") * F("rating_mean"), output_field=FloatField())
    )
    catalogue_mean = (totals["stars"] or 0.0) / totals["ratings"] if totals["ratings"] else 0.0
    prior = float(BAYESIAN_PRIOR_RATINGS)
    return queryset.annotate(
        bayesian_average=(prior * catalogue_mean + Cast("rating_count", FloatField()) * F("rating_mean"))
        / (prior + Cast("rating_count", FloatField()))
    )


def top_rated_movies(n: int = 12) -> list:
    """The n movies with the highest Bayesian average rating."""
    queryset = with_bayesian_average(Movie.objects.filter(rating_count__gt=0))
    return list(_with_listing_relations(queryset.order_by("-bayesian_average", "-rating_count", "title"))[:n])


# The guests' home page lists move with everybody's ratings, slowly: computed at most once a
# minute (top rated sorts the whole rated catalogue), the films themselves read fresh.
GUEST_LISTS_SECONDS = 60
# The parts of a film's page that are the same for everyone (credits, more from its directors)
# are kept this long; the films shown in them are read afresh.
MOVIE_PARTS_SECONDS = GUEST_LISTS_SECONDS


def guest_home_lists(n: int = 12) -> dict[str, list]:
    """{"popular": popular_movies(n), "top_rated": top_rated_movies(n)}, as of the last minute."""
    key = f"catalog:guest-lists:{n}"
    ids = cache.get(key)
    if ids is None:
        lists = {"popular": popular_movies(n), "top_rated": top_rated_movies(n)}
        cache.set(key, {name: [movie.pk for movie in movies] for name, movies in lists.items()}, GUEST_LISTS_SECONDS)
        return lists
    movies = _with_listing_relations(Movie.objects.filter(pk__in={pk for pks in ids.values() for pk in pks})).in_bulk()
    return {name: [movies[pk] for pk in pks if pk in movies] for name, pks in ids.items()}


BROWSE_SORTS = {
    "popular": ("Most rated", ("-rating_count", "title")),
    "top": ("Top rated", ("-bayesian_average", "-rating_count", "title")),
    "newest": ("Newest", (F("year").desc(nulls_last=True), "title")),
    "title": ("Title A–Z", ("title", "year")),
}


def browse_movies(*, genre=None, year_from=None, year_to=None, sort: str = "popular"):
    """A queryset of the catalogue filtered by genre and years, in one of BROWSE_SORTS orders."""
    queryset = _filtered_movies(Movie.objects.all(), genre=genre, year_from=year_from, year_to=year_to)
    if sort == "top":
        queryset = with_bayesian_average(queryset)
    _, ordering = BROWSE_SORTS.get(sort, BROWSE_SORTS["popular"])
    return _with_listing_relations(queryset.order_by(*ordering))


# One index probe per decade on the year index (a loose index scan), so the cost does not grow
# with the catalogue: a DISTINCT over the years reads every film (and Movie.Meta.ordering would
# add the title to it, fetching every film's row).
_DECADES_SQL = """
WITH RECURSIVE decades(decade) AS (
    SELECT (SELECT MIN(year) FROM {table}) / 10 * 10
    UNION ALL
    SELECT (SELECT MIN(year) FROM {table} WHERE year >= decade + 10) / 10 * 10 FROM decades WHERE decade IS NOT NULL
)
SELECT decade FROM decades WHERE decade IS NOT NULL
"""


def catalogue_decades() -> list[int]:
    """Decades that have at least one movie, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(_DECADES_SQL.format(table=connection.ops.quote_name(Movie._meta.db_table)))
        return sorted((int(decade) for (decade,) in cursor.fetchall()), reverse=True)


_MOVIE_CREDITS = ("genres", "directors", "keywords", Prefetch("cast", queryset=CastMember.objects.select_related("actor")))


def movie_detail(movie_id: int) -> Movie:
    """The movie with genres, directors, keywords and cast in billing order; raises
    Movie.DoesNotExist.

    The film's row is read afresh (its facts and rating statistics); its credits are kept in the
    shared cache under the row's updated_at for MOVIE_PARTS_SECONDS: an edit in the admin saves
    the film, so it shows at once; a person renamed on their own page shows within that time."""
    movie = Movie.objects.get(pk=movie_id)
    _with_credits(movie, cache.get(_credits_key(movie)))
    return movie


def _credits_key(movie) -> str:
    return f"catalog:movie-credits:{movie.pk}:{movie.updated_at.timestamp()}"


def _with_credits(movie, credits) -> None:
    """Attach the kept credits (``credits``, None when not kept: read and keep them)."""
    if credits is None:
        prefetch_related_objects([movie], *_MOVIE_CREDITS)
        cache.set(_credits_key(movie), movie._prefetched_objects_cache, MOVIE_PARTS_SECONDS)
    else:
        movie._prefetched_objects_cache = credits


def movie_page_parts(movie_id: int, *, n: int, user) -> tuple[Movie, list[int], list[int]]:
    """(movie_detail, the ids of its similar films, of more from its directors): what a film's
    page shows besides the user's own, the three kept parts read in one round trip.
    Raises Movie.DoesNotExist."""
    from recommendations import selectors as recommendation_selectors

    movie = Movie.objects.get(pk=movie_id)
    keys = [_credits_key(movie), _directors_key(movie, n),
            recommendation_selectors.similar_movie_ids_key(movie, n=n, user=user)]
    kept = cache.get_many([key for key in keys if key is not None])
    _with_credits(movie, kept.get(keys[0]))
    director_ids = more_from_directors_ids(movie, n, kept=kept.get(keys[1]))
    similar_ids = recommendation_selectors.similar_movie_ids(movie, n=n, user=user, kept=kept.get(keys[2]))
    return movie, similar_ids, director_ids


def movie_has_simulated_ratings(movie) -> bool:
    """Whether any of the movie's ratings come from simulated demo users."""
    return simulated_users_exist() and Rating.objects.filter(
        movie=movie, user__source=get_user_model().Source.SIMULATED).exists()


# (until when, the answer) of simulated_users_exist in this process.
_simulated_users: tuple[float, bool | None] = (float("-inf"), None)


def simulated_users_exist() -> bool:
    """Whether the database holds simulated demo users (so averages include their ratings);
    remembered in each process for GUEST_LISTS_SECONDS (the demo is loaded or removed by
    commands, not by visitors): asked on every page, it costs no query and no round trip."""
    global _simulated_users
    until, found = _simulated_users
    now = time.monotonic()
    if found is None or now >= until:
        User = get_user_model()
        found = User.objects.filter(source=User.Source.SIMULATED).exists()
        _simulated_users = (now + GUEST_LISTS_SECONDS, found)
    return found


def forget_simulated_users() -> None:
    """Make the next simulated_users_exist() ask the database (a test's database was replaced)."""
    global _simulated_users
    _simulated_users = (float("-inf"), None)


def person_filmography(person) -> list:
    """The person's movies, newest first."""
    return list(_with_listing_relations(person.movies.order_by(F("year").desc(nulls_last=True), "title")))


def more_from_directors(movie, n: int = 12) -> list:
    """Other films by the movie's directors, most rated first."""
    return movies_in_order(more_from_directors_ids(movie, n))


def _directors_key(movie, n: int) -> str:
    return f"catalog:more-from-directors:{movie.pk}:{movie.updated_at.timestamp()}:{n}"


def more_from_directors_ids(movie, n: int = 12, *, kept=None) -> list[int]:
    """The ids of more_from_directors, kept in the shared cache for MOVIE_PARTS_SECONDS under the
    film's updated_at (its directors are edited with it); ``kept``: the kept ids when the caller
    read them already (movie_page_parts)."""
    key = _directors_key(movie, n)
    ids = cache.get(key) if kept is None else kept
    if ids is None:
        # The films' ids first, from the link table's indexes: a join with DISTINCT over every
        # column of the film (or a semi-join) let PostgreSQL read the whole catalogue.
        credits = Movie.directors.through.objects
        directors = [director.pk for director in movie.directors.all()]  # prefetched by movie_detail
        others = set(credits.filter(director_id__in=directors).values_list("movie_id", flat=True)) - {movie.pk}
        ids = list(Movie.objects.filter(pk__in=others).order_by("-rating_count", "-rating_mean", "pk")
                   .values_list("pk", flat=True)[:n])
        cache.set(key, ids, MOVIE_PARTS_SECONDS)
    return ids


def movies_in_order(ids, *, cards: bool = False) -> list:
    """The films of ``ids`` (read afresh, with their genres) in that order; missing ones left out.
    ``cards``: only what their cards show (card_movies), for a page that shows nothing else of them."""
    by_id = card_movies(ids) if cards else {
        movie.pk: movie for movie in _with_listing_relations(Movie.objects.filter(pk__in=list(ids)))}
    return [by_id[pk] for pk in ids if pk in by_id]


# What a film's card shows (catalog_extras.movie_card) besides its genres.
CARD_FIELDS = ("id", "title", "year", "poster", "poster_url", "rating_count", "rating_mean")
# (until when, {genre id: Genre}) in this process.
_genres: tuple[float, dict] = (float("-inf"), {})


def genres_by_id(*, refresh: bool = False) -> dict:
    """Every genre (a few dozen rows), kept in this process for MOVIE_PARTS_SECONDS (the search
    form's choices): a genre renamed in the admin shows there within that time."""
    global _genres
    until, genres = _genres
    now = time.monotonic()
    if refresh or now >= until:
        genres = Genre.objects.in_bulk()
        _genres = (now + MOVIE_PARTS_SECONDS, genres)
    return genres


# The cards' films and their genres in one statement, written out like _MEMBER_READS_SQL (through
# the ORM, the films and their prefetched genres cost three times the rest of a film page's
# shelves): (0, *the card's columns) rows, and (1, film id, NULLs) rows for the genres with the
# genre id in the year's column (an integer column: PostgreSQL's UNION wants matching types).
# The columns come in the model's order, the order Model.from_db takes them in (id first).
_CARD_COLUMNS = [field.attname for field in Movie._meta.concrete_fields if field.attname in CARD_FIELDS]
_CARD_GENRE_COLUMN = _CARD_COLUMNS.index("year")
_CARD_READS_SQL = """
SELECT 0, {columns} FROM {movie} WHERE id IN ({ids})
UNION ALL SELECT 1, movie_id, {genre_columns} FROM {movie_genres} WHERE movie_id IN ({ids})
"""


def card_movies(ids) -> dict:
    """{id: film} of ``ids``, read afresh with what a card shows: the card's fields (the rest
    deferred) and, in ``card_genres``, their genres in name order (catalog_extras.movie_card).
    The genres' names come from genres_by_id, kept in the process: a genre renamed in the admin
    shows on cards within MOVIE_PARTS_SECONDS."""
    ids = [int(pk) for pk in ids]
    if not ids:
        return {}
    quote = connection.ops.quote_name
    genre_columns = ["genre_id" if i == _CARD_GENRE_COLUMN else "NULL" for i in range(1, len(_CARD_COLUMNS))]
    sql = _CARD_READS_SQL.format(
        columns=", ".join(map(quote, _CARD_COLUMNS)), movie=quote(Movie._meta.db_table),
        genre_columns=", ".join(genre_columns), movie_genres=quote(Movie.genres.through._meta.db_table),
        ids=", ".join(["%s"] * len(ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, ids + ids)
        rows = cursor.fetchall()
    films, pairs = {}, []
    for kind, *values in rows:
        if kind == 0:
            film = films[values[0]] = Movie.from_db(connection.alias, _CARD_COLUMNS, values)
            film.card_genres = []
        else:
            pairs.append((values[0], values[_CARD_GENRE_COLUMN]))
    genres = genres_by_id()
    if any(genre_id not in genres for _, genre_id in pairs):
        genres = genres_by_id(refresh=True)  # a genre added since
    for movie_id, genre_id in pairs:
        if movie_id in films and genre_id in genres:
            films[movie_id].card_genres.append(genres[genre_id])
    for film in films.values():
        film.card_genres.sort(key=lambda genre: (genre.name, genre.pk))
    return films


def forget_genres() -> None:
    """Make the next card read the genres afresh (a test's database was replaced)."""
    global _genres
    _genres = (float("-inf"), {})


def user_rating_map(user, movie_ids) -> dict[int, float]:
    """{movie_id: score} of the user's ratings among movie_ids (empty for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return {}
    return dict(Rating.objects.filter(user=user, movie_id__in=list(movie_ids)).values_list("movie_id", "score"))


def user_ratings(user):
    """The user's ratings, most recently changed first, with their movies."""
    return Rating.objects.filter(user=user).select_related("movie").order_by("-updated_at", "-id")


def user_watchlist(user):
    """The user's watchlist entries, most recent first."""
    return WatchlistEntry.objects.filter(user=user).select_related("movie").order_by("-added_at", "-id")


def user_not_interested(user):
    """Movies the user hid, most recent first."""
    return NotInterested.objects.filter(user=user).select_related("movie").order_by("-added_at", "-id")


@dataclass
class MemberReads:
    """What a film's page shows of a signed-in user's own, read at once (member_film_reads)."""
    ratings: dict[int, float]  # all of the user's ratings: {film id: stars}
    on_watchlist: bool  # the film is on their watchlist
    hidden: bool  # they marked the film not interested
    picked_genres: list[str]  # the names of the genres they picked at onboarding


# A film's page's reads of the signed-in user's own, in one statement: (what, film or genre id,
# stars, genre name) rows. Written out (like the taste fingerprint's SQL): composed with the ORM,
# the four parts cost more to build than the three queries they replace.
_MEMBER_READS_SQL = """
SELECT 0, movie_id, score, NULL FROM {rating} WHERE user_id = %s
UNION ALL SELECT 1, movie_id, NULL, NULL FROM {watchlist} WHERE user_id = %s AND movie_id = %s
UNION ALL SELECT 2, movie_id, NULL, NULL FROM {hidden} WHERE user_id = %s AND movie_id = %s
UNION ALL SELECT 3, p.genre_id, NULL, g.name FROM {picked} p JOIN {genre} g ON g.id = p.genre_id WHERE p.user_id = %s
"""


def member_film_reads(user, movie) -> MemberReads:
    """The signed-in user's ratings, whether ``movie`` is on their watchlist or hidden, and their
    picked genres, in one query (what user_rating_map, movie_flags_for_user and the predicted
    stars read one by one)."""
    from recommendations.models import GenrePreference

    tables = {name: connection.ops.quote_name(model._meta.db_table) for name, model in (
        ("rating", Rating), ("watchlist", WatchlistEntry), ("hidden", NotInterested),
        ("picked", GenrePreference), ("genre", Genre))}
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_READS_SQL.format(**tables), [user.pk, user.pk, movie.pk, user.pk, movie.pk, user.pk])
        rows = cursor.fetchall()
    reads = MemberReads({}, False, False, [])
    for kind, film, stars, name in rows:
        if kind == 0:
            reads.ratings[film] = stars
        elif kind == 1:
            reads.on_watchlist = True
        elif kind == 2:
            reads.hidden = True
        else:
            reads.picked_genres.append(name)
    return reads


def movie_flags_for_user(user, movie) -> dict:
    """Whether the movie is on the user's watchlist / not-interested list (one query)."""
    if not getattr(user, "is_authenticated", False):
        return {"on_watchlist": False, "hidden": False}
    listed = (WatchlistEntry.objects.filter(user=user, movie=movie).order_by()
              .annotate(kind=Value("watchlist")).values_list("kind"))
    hidden = (NotInterested.objects.filter(user=user, movie=movie).order_by()
              .annotate(kind=Value("hidden")).values_list("kind"))
    kinds = {kind for (kind,) in listed.union(hidden)}
    return {"on_watchlist": "watchlist" in kinds, "hidden": "hidden" in kinds}
