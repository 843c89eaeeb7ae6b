"""Selectors that read the catalogue: search, popular and top-rated lists, browse, user lists.

Search runs the same way on SQLite and PostgreSQL: a normalised substring match in the database
(Movie.search_title, Person.search_name are accent-free lower case) plus fuzzy matching with
rapidfuzz over a per-process index of normalised titles and names, rebuilt when the catalogue
changes.
"""
import threading
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, F, FloatField, Max, Prefetch, Q, Sum
from django.db.models.functions import Cast
from rapidfuzz import fuzz, process

from catalog.models import Actor, CastMember, Director, Movie, NotInterested, Rating, WatchlistEntry
from catalog.text import normalize

MAX_QUERY_LENGTH = 200
SEARCH_LIMIT = 60
FUZZY_CUTOFF = 82
MIN_FUZZY_QUERY_LENGTH = 3
PARTIAL_CUTOFF = 87
MIN_NAME_PART_LENGTH = 4
MIN_FUZZY_WORD_LENGTH = 4
WORD_CUTOFF = 80
MAX_WORD_VARIANTS = 5
PARTIAL_MIN_QUERY_LENGTH = 5
# Weight of the prior in the Bayesian average: a movie needs about this many ratings before its
# own mean counts as much as the catalogue-wide mean.
BAYESIAN_PRIOR_RATINGS = 10
LEADING_ARTICLES = ("the ", "a ", "an ", "le ", "la ", "les ", "l ", "el ", "il ", "der ", "die ", "das ")

# Ranking tiers, best first.
EXACT, PREFIX, CONTAINS, PERSON, FUZZY = range(5)


class QueryTooLong(ValidationError):
    pass


def _prepared_query(query: str) -> str:
    if len(query or "") > MAX_QUERY_LENGTH:
        raise QueryTooLong(
            f"Search for at most {MAX_QUERY_LENGTH} characters (yours has {len(query)}).", code="too_long"
        )
    return normalize(query or "").replace("\n", " ")


# --- The per-process fuzzy index -------------------------------------------------------------


@dataclass
class _FuzzyIndex:
    version: tuple = ()
    keys: list = field(default_factory=list)  # what each text belongs to: a movie id or (kind, id)
    texts: list = field(default_factory=list)
    words: list = field(default_factory=list)  # distinct words of all texts, for per-word typos


_title_index = _FuzzyIndex()
_people_index = _FuzzyIndex()
_index_lock = threading.Lock()


def _without_article(text: str) -> str | None:
    for article in LEADING_ARTICLES:
        if text.startswith(article) and len(text) > len(article):
            return text[len(article):]
    return None


def _movie_titles_index() -> _FuzzyIndex:
    """(movie id, normalised title) pairs; rebuilt when the movie count or last update changes."""
    global _title_index
    stats = Movie.objects.aggregate(n=Count("id"), latest=Max("updated_at"), top=Max("id"))
    version = (stats["n"], stats["latest"], stats["top"])
    with _index_lock:
        if _title_index.version != version:
            index = _FuzzyIndex(version=version)
            for movie_id, search_title in Movie.objects.values_list("id", "search_title").iterator():
                for line in search_title.split("\n"):
                    for text in (line, _without_article(line)):
                        if text:
                            index.keys.append(movie_id)
                            index.texts.append(text)
            index.words = sorted({word for text in index.texts for word in text.split()})
            _title_index = index
        return _title_index


def _people_names_index() -> _FuzzyIndex:
    """(("director"|"actor", id), normalised name) pairs; rebuilt when people are added or removed."""
    global _people_index
    directors = Director.objects.aggregate(n=Count("id"), top=Max("id"))
    actors = Actor.objects.aggregate(n=Count("id"), top=Max("id"))
    version = (directors["n"], directors["top"], actors["n"], actors["top"])
    with _index_lock:
        if _people_index.version != version:
            index = _FuzzyIndex(version=version)
            for kind, model in (("director", Director), ("actor", Actor)):
                for person_id, name in model.objects.values_list("id", "search_name").iterator():
                    # The whole name, and each longer part of it: "kubrik" finds "stanley kubrick".
                    parts = [part for part in name.split() if len(part) >= MIN_NAME_PART_LENGTH]
                    for text in {name, *parts}:
                        index.keys.append((kind, person_id))
                        index.texts.append(text)
            _people_index = index
        return _people_index


def _fuzzy_matches(query: str, index: _FuzzyIndex, limit: int) -> list[tuple[object, float]]:
    """Best (key, score) pairs for query, best first.

    ratio catches typos in whole titles and names; partial_ratio (for queries of
    PARTIAL_MIN_QUERY_LENGTH+ characters) catches a misspelt title inside a longer one ("godfater"
    in "godfather part ii"). Texts much shorter than the query never match ("go" is not
    "godfater"). (WRatio is not used: its token-set part matches any title sharing "the".)
    """
    if len(query) < MIN_FUZZY_QUERY_LENGTH or not index.texts:
        return []
    minimum_length = len(query) * 2 // 3
    best: dict[object, float] = {}

    def keep(key, score):
        if score > best.get(key, 0.0):
            best[key] = score

    for text, score, position in process.extract(
        query, index.texts, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=limit * 3
    ):
        if len(text) >= minimum_length:
            keep(index.keys[position], score)
    if len(query) >= PARTIAL_MIN_QUERY_LENGTH:
        for text, score, position in process.extract(
            query, index.texts, scorer=fuzz.partial_ratio, score_cutoff=PARTIAL_CUTOFF, limit=limit * 3
        ):
            if len(text) >= len(query):  # the query inside a longer text, never the reverse
                keep(index.keys[position], score)
    return sorted(best.items(), key=lambda item: -item[1])


# --- Search ----------------------------------------------------------------------------------


def _contains_all_words(field_name: str, words: list[str]) -> Q:
    condition = Q()
    for word in words:
        condition &= Q(**{f"{field_name}__contains": word})
    return condition


def _word_variants(words: list[str], vocabulary: list[str]) -> list[dict[str, float]]:
    """For each query word, {spelling: score}: itself and close title words ("portait" -> "portrait")."""
    all_variants = []
    for word in words:
        variants = {word: 100.0}
        if len(word) >= MIN_FUZZY_WORD_LENGTH and vocabulary:
            for text, score, _ in process.extract(
                word, vocabulary, scorer=fuzz.ratio, score_cutoff=WORD_CUTOFF, limit=MAX_WORD_VARIANTS
            ):
                variants.setdefault(text, score)
        all_variants.append(variants)
    return all_variants


def _contains_a_variant_of_each_word(field_name: str, variants: list[dict[str, float]]) -> Q:
    condition = Q()
    for spellings in variants:
        any_spelling = Q()
        for spelling in spellings:
            any_spelling |= Q(**{f"{field_name}__contains": spelling})
        condition &= any_spelling
    return condition


def _word_match_score(variants: list[dict[str, float]], text: str) -> float:
    """The weakest word's best spelling found in text (100 when every word is there as typed)."""
    return min(max((score for spelling, score in spellings.items() if spelling in text), default=0.0) for spellings in variants)


def _title_closeness(query: str, search_title: str) -> float:
    lines = search_title.split("\n")
    return max(fuzz.ratio(query, line) for line in lines + [_without_article(line) or line for line in lines])


def _title_tier(query: str, search_title: str) -> int:
    """EXACT, PREFIX or CONTAINS; leading articles of the query and the titles are optional."""
    lines = search_title.split("\n")
    titles = lines + [_without_article(line) or line for line in lines]
    queries = [query, _without_article(query) or query]
    if any(candidate in titles for candidate in queries):
        return EXACT
    if any(title.startswith(candidate) for title in titles for candidate in queries):
        return PREFIX
    return CONTAINS


def _matching_people(query: str, limit: int) -> dict[tuple[str, int], float]:
    """{(kind, person id): score} for directors and actors whose name matches query."""
    words = query.split()
    found: dict[tuple[str, int], float] = {}
    for kind, model in (("director", Director), ("actor", Actor)):
        for person_id in model.objects.filter(_contains_all_words("search_name", words)).values_list(
            "id", flat=True
        )[:limit]:
            found[(kind, person_id)] = 100.0
    for key, score in _fuzzy_matches(query, _people_names_index(), limit):
        found.setdefault(key, score)
    return found


def _consider_person_film(consider, movie_id: int, person_score: float) -> None:
    """A film of a person found by exact name substring ranks above fuzzy name matches."""
    consider(movie_id, PERSON if person_score >= 100.0 else FUZZY, person_score)


def search_movies(query: str, *, genre=None, year_from=None, year_to=None, limit: int = SEARCH_LIMIT) -> list:
    """Movies matching query by title (typos and accents forgiven), alternative title, or person.

    Exact and prefix title matches come first, then other matches by fuzzy score, then by
    popularity. genre is a Genre or its slug; year_from/year_to bound the year (inclusive).
    With an empty query and a filter, the filtered catalogue by popularity.
    Raises QueryTooLong (a ValidationError) for queries over MAX_QUERY_LENGTH characters.
    """
    normalized = _prepared_query(query)
    filtered = _filtered_movies(Movie.objects.all(), genre=genre, year_from=year_from, year_to=year_to)
    if not normalized:
        if genre is None and year_from is None and year_to is None:
            return []
        return list(_with_listing_relations(filtered.order_by("-rating_count", "title"))[:limit])

    ranks: dict[int, tuple[int, float]] = {}

    def consider(movie_id: int, tier: int, score: float) -> None:
        rank = (tier, -score)
        if movie_id not in ranks or rank < ranks[movie_id]:
            ranks[movie_id] = rank

    index = _movie_titles_index()
    # "the heat" finds "Heat": a leading article is optional.
    variants = _word_variants((_without_article(normalized) or normalized).split(), index.words)
    for movie_id, search_title in (
        Movie.objects.filter(_contains_a_variant_of_each_word("search_title", variants))
        .order_by("-rating_count")
        .values_list("id", "search_title")[: limit * 5]
    ):
        word_score = _word_match_score(variants, search_title)
        if word_score >= 100.0:
            consider(movie_id, _title_tier(normalized, search_title), 100.0)
        else:
            # Every word found, some misspelt: the closer the whole title, the better.
            consider(movie_id, FUZZY, (word_score + _title_closeness(normalized, search_title)) / 2)
    for movie_id, score in _fuzzy_matches(normalized, index, limit):
        consider(movie_id, FUZZY, score)
    people = _matching_people(normalized, limit)
    if people:
        directors = [pk for kind, pk in people if kind == "director"]
        actors = [pk for kind, pk in people if kind == "actor"]
        for movie_id, director_id in Movie.directors.through.objects.filter(director_id__in=directors).values_list(
            "movie_id", "director_id"
        ):
            _consider_person_film(consider, movie_id, people[("director", director_id)])
        for movie_id, actor_id in CastMember.objects.filter(actor_id__in=actors).values_list("movie_id", "actor_id"):
            _consider_person_film(consider, movie_id, people[("actor", actor_id)])

    movies = list(_with_listing_relations(filtered.filter(pk__in=list(ranks))))
    movies.sort(key=lambda movie: (*ranks[movie.pk], -movie.rating_count, movie.title))
    return movies[:limit]


def search_people(query: str, *, limit: int = 12) -> list:
    """Directors and actors whose name matches query (typos and accents forgiven), best first.

    Each returned person has a `role` attribute: "Director" or "Actor".
    """
    normalized = _prepared_query(query)
    if not normalized:
        return []
    people = _matching_people(normalized, limit)
    found = []
    for kind, model in (("director", Director), ("actor", Actor)):
        ids = [pk for person_kind, pk in people if person_kind == kind]
        for person in model.objects.filter(pk__in=ids).annotate(film_count=Count("movies")):
            person.role = kind.title()
            person.match_score = people[(kind, person.pk)]
            found.append(person)
    found.sort(key=lambda person: (-person.match_score, -person.film_count, person.name))
    return found[:limit]


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


def catalogue_decades() -> list[int]:
    """Decades that have at least one movie, newest first."""
    years = Movie.objects.filter(year__isnull=False).values_list("year", flat=True).distinct()
    return sorted({year // 10 * 10 for year in years}, reverse=True)


def movie_detail(movie_id: int) -> Movie:
    """The movie with genres, directors and cast in billing order; raises Movie.DoesNotExist."""
    return (
        Movie.objects.prefetch_related(
            "genres", "directors", "keywords", Prefetch("cast", queryset=CastMember.objects.select_related("actor"))
        ).get(pk=movie_id)
    )


def movie_has_simulated_ratings(movie) -> bool:
    """Whether any of the movie's ratings come from simulated demo users."""
    return Rating.objects.filter(movie=movie, user__source=get_user_model().Source.SIMULATED).exists()


def simulated_users_exist() -> bool:
    """Whether the database holds simulated demo users (so averages include their ratings)."""
    User = get_user_model()
    return User.objects.filter(source=User.Source.SIMULATED).exists()


def person_filmography(person) -> list:
    """The person's movies, newest first."""
    return list(_with_listing_relations(person.movies.order_by(F("year").desc(nulls_last=True), "title")))


def more_from_directors(movie, n: int = 12) -> list:
    """Other films by the movie's directors, most rated first."""
    others = Movie.objects.filter(directors__in=movie.directors.all()).exclude(pk=movie.pk).distinct()
    return list(_with_listing_relations(others.order_by("-rating_count", "-rating_mean", "pk")[:n]))


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


def movie_flags_for_user(user, movie) -> dict:
    """Whether the movie is on the user's watchlist / not-interested list."""
    if not getattr(user, "is_authenticated", False):
        return {"on_watchlist": False, "hidden": False}
    return {
        "on_watchlist": WatchlistEntry.objects.filter(user=user, movie=movie).exists(),
        "hidden": NotInterested.objects.filter(user=user, movie=movie).exists(),
    }
