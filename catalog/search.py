"""Catalogue search: titles, alternative titles, directors and actors, forgiving typos and accents.

How a query is read
- Normalised like the stored search columns (catalog.text.normalize: accent-free lower-case
  words), so "Amélie" and "amelie" are one query on every backend.
- A number and its Roman numeral are one word ("godfather 2" finds "The Godfather: Part II"), a
  plural "s" is forgiven, and "the", "a", "an", "and", "of" are optional when the query has other
  words ("fast and furious" finds "Fast & Furious").
- A short, curated list of common abbreviations (ABBREVIATIONS) adds a second reading of the
  query: "lotr" is also "lord of the rings", "t2" also "terminator 2".

Ranking, best first; ties go to the film with more ratings:
  EXACT    a title or alternative title is the query (leading articles optional)
  PREFIX   a title starts with the query's words
  WORDS    a title holds every query word as a whole word
  PERSON   a film of a director or actor whose name holds every query word
  PARTIAL  a title or name holds every query word as the start of one of its words ("godf")
  FUZZY    a title or name close to the query despite typos (typo_score; names need
           FUZZY_NAME_CUTOFF), within FUZZY_MARGIN of the best typo match
PARTIAL and FUZZY matches are shown only when nothing matches in the first four tiers: a query
that finds what was typed is not padded with look-alikes ("matrix" never tails off into "The
Master", "alien" never into Woody Allen).

Where candidates come from (both backends then rank them with the same code below)
- PostgreSQL: full-text prefix queries on to_tsvector('simple', …); for typos, pg_trgm word
  similarity of the whole query, and full text with every spelling one typo from each query word.
- SQLite: FTS5 prefix queries; for typos, each query word's close spellings are looked up in the
  FTS5 vocabulary (fts5vocab) and matched like typed words.
Both are served by the database's indexes (catalog.search_indexes); nothing is held in memory.
The columns are normalised once, on write, by catalog.text.normalize (unidecode), which also
transliterates what PostgreSQL's unaccent leaves alone (ß, Ø, Cyrillic); the query goes through
the same function, so both sides always agree.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from rapidfuzz import process
from rapidfuzz.distance import OSA

from catalog.models import Actor, CastMember, Director, Movie
from catalog.search_indexes import fts_table, vocabulary_table
from catalog.selectors import GUEST_LISTS_SECONDS, _filtered_movies, _with_listing_relations, card_movies
from catalog.text import normalize

MAX_QUERY_LENGTH = 200
SEARCH_LIMIT = 60
PEOPLE_LIMIT = 12
# Which films and people a query finds is kept this long in the shared cache (the lists of
# guests are as old as that already): the matching queries are the cost of a search. The films
# shown are read afresh on every search.
SEARCH_SECONDS = GUEST_LISTS_SECONDS
# Part of every kept search's key; changed whenever a film, a person or a credit is saved or
# deleted one by one (the admin, the site's services), so a staff edit is searchable at once.
SEARCH_STAMP_KEY = "catalog:search-stamp"

EXACT, PREFIX, WORDS, PERSON, PARTIAL, FUZZY = range(6)
STRONG_TIERS = frozenset({EXACT, PREFIX, WORDS, PERSON})

# Typos are counted as insertions, deletions, substitutions and swaps of neighbours (optimal
# string alignment). A query word may hold one typo (two from LONG_WORD letters on); shorter
# words than MIN_FUZZY_WORD_LENGTH none. Similarity is 100 x (1 - typos / length).
MIN_FUZZY_WORD_LENGTH = 4
LONG_WORD = 10
MIN_PREFIX_LENGTH = 3  # shorter query words match whole words only: "a" is not every word in a
TYPO_LETTERS = "abcdefghijklmnopqrstuvwxyz"
FUZZY_TEXT_CUTOFF = 85  # similarity of a whole title or name to the whole query ("brave heart")
# Names are matched word by word among hundreds of thousands of people: one letter off in a
# five-letter word ("alein" / "allen", "klein") is a coincidence there, not a typo.
FUZZY_NAME_CUTOFF = 85
FUZZY_MARGIN = 10  # typo matches this far below the best one are dropped
WORD_SPELLING_CUTOFF = 70  # SQLite: vocabulary words this close to a query word are tried
MAX_WORD_SPELLINGS = 8
TRIGRAM_THRESHOLD = 0.45  # PostgreSQL: pg_trgm word similarity of a typo candidate
TITLE_CANDIDATES = 300
TYPO_CANDIDATES = 100
PEOPLE_CANDIDATES = 200
PEOPLE_WHOSE_FILMS_ARE_LISTED = 20

OPTIONAL_WORDS = frozenset({"the", "a", "an", "and", "of"})
LEADING_ARTICLES = ("the", "a", "an", "le", "la", "les", "l", "el", "il", "der", "die", "das")
_ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"]
NUMERALS = {**{str(n): roman for n, roman in enumerate(_ROMAN, 1)}, **{roman: str(n) for n, roman in enumerate(_ROMAN, 1)}}

# Abbreviations people type for films, and the words they stand for. The query is read both as
# typed and with these replaced; keep the list short and unambiguous.
ABBREVIATIONS = {
    "lotr": "lord of the rings",
    "t2": "terminator 2",
    "t3": "terminator 3",
    "esb": "empire strikes back",
    "anh": "a new hope",
    "rotj": "return of the jedi",
    "tpm": "phantom menace",
    "aotc": "attack of the clones",
    "rots": "revenge of the sith",
    "sw": "star wars",
    "hp": "harry potter",
    "potc": "pirates of the caribbean",
    "tmnt": "teenage mutant ninja turtles",
    "mib": "men in black",
    "bttf": "back to the future",
    "gotg": "guardians of the galaxy",
    "jp": "jurassic park",
    "mi": "mission impossible",
    "sotl": "silence of the lambs",
    "httyd": "how to train your dragon",
    "et": "e t the extra terrestrial",
    "indy": "indiana jones",
}

PEOPLE = (("director", Director), ("actor", Actor))


class QueryTooLong(ValidationError):
    pass


# --- Reading the query ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One way to read the query: its words (abbreviations expanded or as typed)."""

    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def core(self) -> str:
        """The text without a leading article: "the heat" -> "heat"."""
        return _without_article(self.text) or self.text

    @property
    def required(self) -> tuple[str, ...]:
        """The words a match must hold: all but optional ones, unless the query is only those.
        ("die" stays required in "die hard": "Hard Target" is no match. A title without the
        query's foreign article, "les intouchables", is found as a close spelling.)"""
        significant = tuple(word for word in self.words if word not in OPTIONAL_WORDS)
        return significant or self.words


def _prepared_query(query: str) -> str:
    if len(query or "") > MAX_QUERY_LENGTH:
        raise QueryTooLong(
            f"Search for at most {MAX_QUERY_LENGTH} characters (yours has {len(query)}).", code="too_long"
        )
    return normalize(query or "").replace("\n", " ")


def readings_of(normalized_query: str) -> list[Reading]:
    """The query as typed, and with its abbreviations expanded when it holds any."""
    typed = tuple(normalized_query.split())
    expanded = tuple(word for typed_word in typed for word in ABBREVIATIONS.get(typed_word, typed_word).split())
    return [Reading(typed)] + ([Reading(expanded)] if expanded != typed else [])


def _without_article(text: str) -> str | None:
    first, _, rest = text.partition(" ")
    return rest if rest and first in LEADING_ARTICLES else None


def spellings(word: str) -> tuple[str, ...]:
    """The word and its numeral twin: "2" -> ("2", "ii")."""
    return (word, NUMERALS[word]) if word in NUMERALS else (word,)


def _same_word(query_word: str, text_word: str) -> bool:
    if text_word in spellings(query_word):
        return True
    return text_word in (query_word + "s", query_word + "es") or query_word in (text_word + "s", text_word + "es")


def _starts_word(query_word: str, text_word: str) -> bool:
    if len(query_word) < MIN_PREFIX_LENGTH:
        return _same_word(query_word, text_word)
    return any(text_word.startswith(spelling) for spelling in spellings(query_word))


# --- Ranking a candidate (the same on every backend) ----------------------------------------


def text_tier(reading: Reading, text: str) -> int | None:
    """EXACT, PREFIX, WORDS or PARTIAL for a title (lines of search_title) or a name; None if none."""
    lines = text.split("\n")
    forms = {form for line in lines for form in (line, _without_article(line) or line)}
    if forms & {reading.text, reading.core, reading.text + "s", reading.core + "s"}:
        return EXACT
    several_words = len(reading.core.split()) > 1
    for form in forms:
        if form.startswith(reading.core + " ") or form.startswith(reading.text + " "):
            return PREFIX
        if several_words and form.startswith(reading.core):  # the last word still being typed
            return PREFIX
    line_words = [line.split() for line in lines]
    if any(all(any(_same_word(w, t) for t in words) for w in reading.required) for words in line_words):
        return WORDS
    if any(all(any(_starts_word(w, t) for t in words) for w in reading.required) for words in line_words):
        return PARTIAL
    return None


def similarity(a: str, b: str) -> float:
    """100 x (1 - typos / length of the longer text), typos counted by optimal string alignment."""
    return 100.0 * OSA.normalized_similarity(a, b)


def _typo_budget(word: str) -> int:
    if len(word) < MIN_FUZZY_WORD_LENGTH:
        return 0
    return 1 if len(word) < LONG_WORD else 2


def _word_closeness(query_word: str, words: list[str]) -> float:
    """Similarity of the query word to its closest word within its typo budget; 0 if none is."""
    if any(_same_word(query_word, word) or _starts_word(query_word, word) for word in words):
        return 100.0
    budget = _typo_budget(query_word)
    best = process.extractOne(query_word, words, scorer=OSA.distance, score_cutoff=budget) if budget else None
    return similarity(query_word, best[0]) if best else 0.0


def typo_score(reading: Reading, text: str) -> float:
    """How close a title or name is to the query despite typos (0-100; 0 is no match).

    The better of: the whole title against the whole query, when at least FUZZY_TEXT_CUTOFF
    ("brave heart" is 91 from "braveheart"), and the weakest query word against its closest
    title word, when every word is within its typo budget ("godfater part" is 89 from "the
    godfather part ii"; "godmother" is two typos from "godfather": no match).
    """
    best = 0.0
    for line in text.split("\n"):
        whole = max(similarity(reading.text, line), similarity(reading.core, _without_article(line) or line))
        words = line.split()
        weakest_word = min(_word_closeness(word, words) for word in reading.required)
        best = max(best, whole if whole >= FUZZY_TEXT_CUTOFF else 0.0, weakest_word)
    return best


def _best_tier(readings: list[Reading], text: str) -> int | None:
    tiers = [tier for tier in (text_tier(reading, text) for reading in readings) if tier is not None]
    return min(tiers) if tiers else None


# --- Candidates: PostgreSQL ------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """A searchable table: its normalised column and how its rows are ordered among equals."""

    model: type
    column: str
    popularity_sql: str  # an SQL expression over alias t; higher is more popular


def _sources() -> dict[str, _Source]:
    def film_count(through, fk):
        return f"(SELECT COUNT(*) FROM {through} f WHERE f.{fk} = t.id)"

    return {
        "movie": _Source(Movie, "search_title", "t.rating_count"),
        "director": _Source(
            Director, "search_name", film_count(Movie.directors.through._meta.db_table, "director_id")
        ),
        "actor": _Source(Actor, "search_name", film_count(CastMember._meta.db_table, "actor_id")),
    }


def _starts_pattern(readings: list[Reading]) -> str:
    """A regular expression (PostgreSQL and Python alike) for a line starting with a reading."""
    articles = "|".join(LEADING_ARTICLES)
    cores = "|".join(sorted({reading.core for reading in readings}))
    return f"(^|\n)(({articles}) )?({cores})"


def _tsquery_term(word: str) -> str:
    terms = [f"{spelling}:*" if len(spelling) >= MIN_PREFIX_LENGTH else spelling for spelling in spellings(word)]
    return "(" + " | ".join(terms) + ")"


def _postgresql_words(source: _Source, readings: list[Reading], limit: int) -> list[tuple[int, str]]:
    """Rows holding every required word of a reading as the start of a word (full-text prefix query)."""
    tsquery = " | ".join("(" + " & ".join(map(_tsquery_term, reading.required)) + ")" for reading in readings)
    table, column = source.model._meta.db_table, source.column
    sql = (
        f"SELECT t.id, t.{column} FROM {table} t "
        f"WHERE to_tsvector('simple', t.{column}) @@ to_tsquery('simple', %s) "
        f"ORDER BY (t.{column} ~ %s) DESC, {source.popularity_sql} DESC, t.id LIMIT {int(limit)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery, _starts_pattern(readings)])
        return cursor.fetchall()


def one_typo_away(word: str) -> set[str]:
    """Every spelling one typo from word: a letter left out, added, changed, or two swapped."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {left + right[1:] for left, right in splits if right}
        | {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
        | {left + letter + right[1:] for left, right in splits if right for letter in TYPO_LETTERS}
        | {left + letter + right for left, right in splits for letter in TYPO_LETTERS}
    )


def _postgresql_similar(source: _Source, reading: Reading, limit: int) -> list[tuple[int, str]]:
    """Rows holding a stretch similar to the whole query (pg_trgm word similarity): typos anywhere
    in longer words, words run together or apart. Inside _postgresql_similar_in_every's transaction."""
    table, column = source.model._meta.db_table, source.column
    sql = (
        f"SELECT t.id, t.{column} FROM {table} t WHERE %s <% t.{column} "
        f"ORDER BY word_similarity(%s, t.{column}) DESC, {source.popularity_sql} DESC, t.id LIMIT {int(limit)}"
    ).replace("<%", "<%%")
    with connection.cursor() as cursor:
        cursor.execute(sql, [reading.text, reading.text])
        return cursor.fetchall()


def _postgresql_similar_in_every(sources: dict[str, _Source], reading: Reading, limit: int) -> dict[str, list]:
    """{source name: _postgresql_similar rows}, in one transaction holding the similarity
    threshold (set once: each setting and transaction is a round trip to the database)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [str(TRIGRAM_THRESHOLD)])
        return {name: _postgresql_similar(source, reading, limit) for name, source in sources.items()}


def _postgresql_one_typo(source: _Source, reading: Reading, limit: int) -> list[tuple[int, str]]:
    """Rows holding each query word as typed or one typo away ("alein" -> "alien"), by full text:
    short words share too few trigrams with their typo for word similarity to find them."""
    table, column = source.model._meta.db_table, source.column
    terms = []
    for word in reading.required:
        options = [_tsquery_term(word)]
        if MIN_FUZZY_WORD_LENGTH <= len(word) < LONG_WORD:
            options += sorted(one_typo_away(word))
        terms.append("(" + " | ".join(options) + ")")
    # Materialised first: with a LIMIT and hundreds of alternatives the planner would rather walk
    # the primary key testing every row (1.5 s) than read the index (15 ms).
    sql = (
        f"WITH t AS MATERIALIZED (SELECT * FROM {table} "
        f"WHERE to_tsvector('simple', {column}) @@ to_tsquery('simple', %s)) "
        f"SELECT t.id, t.{column} FROM t ORDER BY {source.popularity_sql} DESC, t.id LIMIT {int(limit)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [" & ".join(terms)])
        return cursor.fetchall()


# --- Candidates: SQLite ----------------------------------------------------------------------


def _fts5_term(spelling: str) -> str:
    return f'"{spelling}"*' if len(spelling) >= MIN_PREFIX_LENGTH else f'"{spelling}"'


def _sqlite_rows(source: _Source, options_per_reading: list[list[tuple[str, ...]]], starts: str, limit: int):
    """Rows holding, for some reading, one spelling of each word as the start of a word (FTS5)."""
    table, column = source.model._meta.db_table, source.column
    fts = fts_table(table)
    match = " OR ".join(
        "(" + " AND ".join("(" + " OR ".join(map(_fts5_term, options)) + ")" for options in reading) + ")"
        for reading in options_per_reading
    )
    sql = (
        f"SELECT t.id, t.{column} FROM {fts} JOIN {table} t ON t.id = {fts}.rowid WHERE {fts} MATCH %s "
        f"ORDER BY (t.{column} REGEXP %s) DESC, {source.popularity_sql} DESC, t.id LIMIT {int(limit)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match, starts])
        return cursor.fetchall()


def _sqlite_words(source: _Source, readings: list[Reading], limit: int) -> list[tuple[int, str]]:
    per_reading = [[spellings(word) for word in reading.required] for reading in readings]
    return _sqlite_rows(source, per_reading, _starts_pattern(readings), limit)


def _vocabulary_words(source: _Source, where: str, params: list) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT term FROM {vocabulary_table(source.model._meta.db_table)} WHERE {where}", params)
        return [term for (term,) in cursor.fetchall()]


def _after(prefix: str) -> str:
    """The first string after every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _close_spellings(source: _Source, word: str) -> list[str]:
    """Words of the table within reach of a typo in word, closest first: words starting with its
    first or second letter (a typo rarely hits both), and words it starts with ("spiderman" ->
    "spider"), read from the FTS5 vocabulary."""
    terms = []
    for start in sorted({word[0], word[1]}):  # one range per query: fts5vocab does not combine ranges with OR
        terms += _vocabulary_words(source, "term >= %s AND term < %s", [start, _after(start)])
    close = process.extract(
        word, terms, scorer=OSA.normalized_similarity, score_cutoff=WORD_SPELLING_CUTOFF / 100, limit=MAX_WORD_SPELLINGS
    )
    heads = [word[:end] for end in range(len(word) - 1, MIN_FUZZY_WORD_LENGTH - 1, -1)]
    known_heads = set(_vocabulary_words(source, f"term IN ({', '.join(['%s'] * len(heads))})", heads)) if heads else set()
    return [text for text, _, _ in close] + [head for head in heads if head in known_heads][:2]


def _sqlite_typos(source: _Source, reading: Reading, limit: int) -> list[tuple[int, str]]:
    """Rows holding, for each query word, the word or a close spelling of it from the vocabulary.
    Words too short to hold a typo are left to the scoring ("lost arc" may be "Lost Ark") unless
    the query has no longer word."""
    words = [word for word in reading.required if len(word) >= MIN_FUZZY_WORD_LENGTH] or reading.required
    per_word = []
    for word in words:
        options = [
            spelling for spelling in spellings(word)
            if _vocabulary_words(source, "term >= %s AND term < %s LIMIT 1", [spelling, _after(spelling)])
        ]
        if len(word) >= MIN_FUZZY_WORD_LENGTH:
            options += [text for text in _close_spellings(source, word) if text not in options]
        if not options:
            return []  # a word nothing in this table resembles
        per_word.append(tuple(dict.fromkeys(options)))
    return _sqlite_rows(source, [per_word], _starts_pattern([reading]), limit)


def _whole_line_rows(source: _Source, readings: list[Reading], limit: int) -> list[tuple[int, str]]:
    """Rows whose (first) title or name is one of the readings, or it after "the", "a" or "an": for
    queries such as "the" made only of words most titles hold. Served by B-tree indexes."""
    table, column = source.model._meta.db_table, source.column
    texts = [f"{article}{reading.text}" for reading in readings for article in ("", "the ", "a ", "an ")]
    conditions = [f"t.{column} IN ({', '.join(['%s'] * len(texts))})"]
    params = list(texts)
    if source.model is Movie and connection.vendor == "postgresql":  # a title followed by alternative titles
        conditions += [f"t.{column} LIKE %s"] * len(texts)
        params += [f"{text}\n%" for text in texts]
    elif source.model is Movie:  # SQLite's LIKE ignores case, so cannot use the index: a range can
        conditions += [f"(t.{column} >= %s AND t.{column} < %s)"] * len(texts)
        params += [bound for text in texts for bound in (f"{text}\n", f"{text}\x0b")]
    sql = (
        f"SELECT t.id, t.{column} FROM {table} t WHERE {' OR '.join(conditions)} "
        f"ORDER BY {source.popularity_sql} DESC, t.id LIMIT {int(limit)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _word_candidates(source: _Source, readings: list[Reading], limit: int) -> list[tuple[int, str]]:
    if all(set(reading.required) <= OPTIONAL_WORDS for reading in readings):
        return _whole_line_rows(source, readings, limit)
    if connection.vendor == "postgresql":
        return _postgresql_words(source, readings, limit)
    return _sqlite_words(source, readings, limit)


def _typo_candidate_rounds(sources: dict[str, _Source], reading: Reading, limit: int):
    """Rounds of {source name: rows that may match the reading despite typos}; a later round is
    asked only when the earlier ones gave no typo match."""
    if connection.vendor == "postgresql":
        yield _postgresql_similar_in_every(sources, reading, limit)
        yield {name: _postgresql_one_typo(source, reading, limit) for name, source in sources.items()}
        return
    # "brave heart" may be "Braveheart": trigrams see through the space, words need the joined form.
    readings = [reading, Reading(("".join(reading.words),))] if len(reading.words) in (2, 3) else [reading]
    yield {name: {row for each in readings for row in _sqlite_typos(source, each, limit)} for name, source in sources.items()}


# --- Search ----------------------------------------------------------------------------------


@dataclass
class Matches:
    """What a query matched: movie id -> (tier, score); (kind, person id) -> (tier, score)."""

    movies: dict = field(default_factory=dict)
    people: dict = field(default_factory=dict)

    def consider(self, found: dict, key, tier: int, score: float) -> None:
        rank = (tier, -score)
        if key not in found or rank < found[key]:
            found[key] = rank

    @property
    def strong(self) -> bool:
        return any(tier in STRONG_TIERS for tier, _ in [*self.movies.values(), *self.people.values()])


def match_query(normalized_query: str) -> Matches:
    """Every title and person the query matches, with its tier and score (see the module docstring)."""
    readings = readings_of(normalized_query)
    sources = _sources()
    matches = Matches()
    for movie_id, text in _word_candidates(sources["movie"], readings, TITLE_CANDIDATES):
        tier = _best_tier(readings, text)
        if tier is not None:
            matches.consider(matches.movies, movie_id, tier, 100.0)
    for kind, _ in PEOPLE:
        for person_id, text in _word_candidates(sources[kind], readings, PEOPLE_CANDIDATES):
            tier = _best_tier(readings, text)
            if tier is not None:
                matches.consider(matches.people, (kind, person_id), PARTIAL if tier == PARTIAL else PERSON, 100.0)
    if matches.strong:
        matches.movies = {key: rank for key, rank in matches.movies.items() if rank[0] in STRONG_TIERS}
        matches.people = {key: rank for key, rank in matches.people.items() if rank[0] in STRONG_TIERS}
        return matches

    typed = readings[0]
    if max(map(len, typed.words)) < MIN_FUZZY_WORD_LENGTH:
        return matches  # no word long enough to hold a typo
    typos: dict = {}
    for candidates in _typo_candidate_rounds(sources, typed, TYPO_CANDIDATES):
        for kind, rows in candidates.items():
            cutoff = 0.0 if kind == "movie" else FUZZY_NAME_CUTOFF
            for row_id, text in rows:
                score = typo_score(typed, text)
                if score > cutoff:
                    typos[(kind, row_id)] = score
        if typos:
            break
    if typos:
        best = max(typos.values())
        for (kind, row_id), score in typos.items():
            if score >= best - FUZZY_MARGIN:
                found, key = (matches.movies, row_id) if kind == "movie" else (matches.people, (kind, row_id))
                matches.consider(found, key, FUZZY, score)
    return matches


def _people_by_rank(matches: Matches, limit: int) -> list:
    """Matched directors and actors, best first, each with role, film_count and match rank."""
    found = []
    for kind, model in PEOPLE:
        ids = [pk for person_kind, pk in matches.people if person_kind == kind]
        for person in model.objects.filter(pk__in=ids).annotate(film_count=Count("movies")):
            person.role = kind.title()
            person.match_rank = matches.people[(kind, person.pk)]
            found.append(person)
    found.sort(key=lambda person: (person.match_rank, -person.film_count, person.name, person.pk))
    return found[:limit]


def _add_films_of_people(matches: Matches, listed: list) -> None:
    """Rank the films of the listed people like the people themselves."""
    directors = {person.pk: person.match_rank for person in listed if person.role == "Director"}
    actors = {person.pk: person.match_rank for person in listed if person.role == "Actor"}
    links = [
        (Movie.directors.through.objects.filter(director_id__in=directors).values_list("movie_id", "director_id"), directors),
        (CastMember.objects.filter(actor_id__in=actors).values_list("movie_id", "actor_id"), actors),
    ]
    for rows, ranks in links:
        for movie_id, person_id in rows:
            tier, negative_score = ranks[person_id]
            matches.consider(matches.movies, movie_id, tier, -negative_score)


@dataclass
class SearchResults:
    movies: list
    people: list
    approximate: bool = False  # nothing matched as typed: these are prefix or typo matches


def search_catalogue(
    query: str, *, genre=None, year_from=None, year_to=None, limit: int = SEARCH_LIMIT, people_limit: int = PEOPLE_LIMIT,
    cards: bool = False,
) -> SearchResults:
    """Movies and people matching query, best first (tiers in the module docstring).

    genre is a Genre or its slug; year_from/year_to bound the year (inclusive). With an empty
    query and a filter: the filtered catalogue by popularity, and no people.
    Raises QueryTooLong (a ValidationError) for queries over MAX_QUERY_LENGTH characters.
    ``cards``: the films hold only what their cards show (catalog.selectors.card_movies).
    """
    normalized = _prepared_query(query)
    filtered = _filtered_movies(Movie.objects.all(), genre=genre, year_from=year_from, year_to=year_to)
    if not normalized:
        if genre is None and year_from is None and year_to is None:
            return SearchResults([], [])
        return SearchResults(list(_with_listing_relations(filtered.order_by("-rating_count", "title"))[:limit]), [])

    stamp = cache.get(SEARCH_STAMP_KEY, "")
    asked = repr((stamp, normalized, getattr(genre, "slug", genre), year_from, year_to, limit, people_limit))
    key = "catalog:search:" + hashlib.sha1(asked.encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = _ranked_matches(normalized, filtered, limit=limit, people_limit=people_limit)
        cache.set(key, found, SEARCH_SECONDS)
    chosen, people, approximate = found
    # The films themselves are read afresh: an edited title or a new rating shows at once.
    by_id = card_movies(chosen) if cards else {
        movie.pk: movie for movie in _with_listing_relations(Movie.objects.filter(pk__in=chosen))}
    return SearchResults([by_id[pk] for pk in chosen if pk in by_id], people, approximate=approximate)


def _ranked_matches(normalized: str, filtered, *, limit: int, people_limit: int) -> tuple[list[int], list, bool]:
    """(ids of the films matching, best first; the people matching; whether only approximate
    matches were found) for a normalised query."""
    matches = match_query(normalized)
    people = _people_by_rank(matches, max(people_limit, PEOPLE_WHOSE_FILMS_ARE_LISTED))
    if not any(tier == EXACT for tier, _ in matches.movies.values()):
        # A title that is exactly the query is what was meant: the people who share the name
        # are listed as people, their films do not crowd the list ("léon" is not the actor Leon).
        _add_films_of_people(matches, people[:PEOPLE_WHOSE_FILMS_ARE_LISTED])
    rows = filtered.filter(pk__in=list(matches.movies)).values_list("pk", "rating_count", "title")
    ranked = sorted(rows, key=lambda row: (*matches.movies[row[0]], -row[1], row[2], row[0]))
    return [pk for pk, _, _ in ranked[:limit]], people[:people_limit], not matches.strong


def forget_kept_searches(**kwargs) -> None:
    """Receiver of the catalogue's save, delete and credit signals (catalog.apps): searches kept
    before the change are not read again. Bulk imports send no signals; their changes show within
    SEARCH_SECONDS. Changed at once and again when the change commits: a search run in between
    read the catalogue as it was, and what it kept must not be read after the commit."""
    def change():
        cache.set(SEARCH_STAMP_KEY, uuid.uuid4().hex, None)

    change()
    transaction.on_commit(change)


def search_movies(query: str, **options) -> list:
    """The movies of search_catalogue(query, **options)."""
    return search_catalogue(query, people_limit=0, **options).movies


def search_people(query: str, *, limit: int = PEOPLE_LIMIT) -> list:
    """Directors and actors matching query, best first; each has `role` ("Director" or "Actor")
    and `film_count`."""
    normalized = _prepared_query(query)
    if not normalized:
        return []
    return _people_by_rank(match_query(normalized), limit)
