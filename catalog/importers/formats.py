"""Read MovieLens releases in every published layout, streaming and strictly validated.

open_release(path) takes a folder or the publisher's .zip and returns a Release whose
iterators yield plain records. Nothing here touches the database: the importer, the
evaluation code and the benchmarks all read releases through this module.

Every malformed input raises ReleaseError naming the file, the line and the reason, without
echoing more than a short excerpt of it. Lines are read up to MAX_LINE_BYTES (a longer one is an
error, never a 200 MB string in memory); numbers are checked against the ranges the database
and Python's datetime hold; in a folder, a file that is a link leading out of the folder is
refused unread.
"""
from __future__ import annotations

import codecs
import csv
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

VALID_SCORES = frozenset(x / 2 for x in range(1, 11))
NO_GENRES = {"(no genres listed)", "unknown", ""}
# ml-100k/ml-1m spell it "Children's"; the CSV releases "Children". One catalogue, one name.
GENRE_ALIASES = {"Children's": "Children"}

# ml-1m users.dat codes (its README).
ML1M_AGE_RANGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_AGE_MIDPOINTS = {1: 16, 18: 21, 25: 30, 35: 40, 45: 47, 50: 53, 56: 60}
ML1M_OCCUPATIONS = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin", 4: "college/grad student",
    5: "customer service", 6: "doctor/health care", 7: "executive/managerial", 8: "farmer",
    9: "homemaker", 10: "K-12 student", 11: "lawyer", 12: "programmer", 13: "retired",
    14: "sales/marketing", 15: "scientist", 16: "self-employed", 17: "technician/engineer",
    18: "tradesman/craftsman", 19: "unemployed", 20: "writer",
}
# Years the ratings were collected: turns an age at rating time into an approximate birth year.
COLLECTION_YEAR = {"ml-100k": 1998, "ml-1m": 2000}

# Articles MovieLens moves to the end of a title ("Matrix, The"), in the languages it has.
_ARTICLES = (
    "The|A|An|Le|La|Les|L'|Il|Lo|Gli|Un|Une|Uno|Una|Das|Der|Die|Den|Det|Ein|Eine|El|Los|Las|"
    "O|Os|As|De|Het|Ett|Ta|Hai|Az"
)
_TRAILING_ARTICLE = re.compile(rf"^(?P<rest>.+), (?P<article>{_ARTICLES})$")
_YEAR_SUFFIX = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
_TRAILING_PARENS = re.compile(r"^(?P<rest>.+?)\s*\((?P<inner>[^()]+)\)\s*$")

# Bounds on what a release may hold (every published release is far inside them).
MAX_LINE_BYTES = 64 * 1024
MAX_ID = 2**31 - 1  # movie, IMDb and TMDB ids: the catalogue's integer columns
MAX_USER_ID = 2**63 - 1  # user ids: 64-bit
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31 23:59:59 UTC, the last moment a datetime holds
MAX_TITLE_LENGTH = 300  # catalog.Movie.title
MAX_GENRE_LENGTH = 64  # catalog.Genre.name
# The block reader indexes arrays by movie id; past this, ratings go through the exact reader.
MAX_DENSE_MOVIE_ID = 4_000_000


class ReleaseError(ValueError):
    """A release file is malformed: says which file, which line and why."""

    def __init__(self, file: str, line: int | None, reason: str):
        self.file, self.line, self.reason = file, line, reason
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {reason}")


class UnusualLayout(Exception):
    """The file is not in the plain layout iter_rating_blocks() reads; iter_ratings() reads it (or names its error)."""


class RatingBlock(NamedTuple):
    """Consecutive rows of ratings.csv as arrays (user ids, movie ids, stars, unix timestamps),
    and as their text with "\\n" line ends (for a CSV COPY)."""

    users: np.ndarray
    movies: np.ndarray
    scores: np.ndarray
    timestamps: np.ndarray
    lines: bytes


@dataclass(frozen=True)
class MovieRecord:
    movielens_id: int
    title: str
    year: int | None
    alternative_titles: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    imdb_id: str | None = None
    tmdb_id: int | None = None


@dataclass(frozen=True)
class UserRecord:
    external_id: str
    gender: str = ""
    age: int | None = None
    age_range: str = ""
    birth_year: int | None = None
    occupation: str = ""
    zip_code: str = ""


@dataclass(frozen=True)
class TagRecord:
    user_external_id: str
    movie_external_id: int
    tag: str
    timestamp: int


def move_article(title: str) -> str:
    """'Matrix, The' -> 'The Matrix'; "Avventura, L'" -> "L'Avventura"."""
    match = _TRAILING_ARTICLE.match(title.strip())
    if not match:
        return title.strip()
    article = match["article"]
    return f"{article}{match['rest']}" if article.endswith("'") else f"{article} {match['rest']}"


def parse_title(raw: str) -> tuple[str, int | None, tuple[str, ...]]:
    """Split a MovieLens title into (readable title, year, alternative titles).

    "Cité des enfants perdus, La (City of Lost Children, The) (1995)" ->
    ("La Cité des enfants perdus", 1995, ("The City of Lost Children",)).
    """
    text = raw.strip()
    year = None
    match = _YEAR_SUFFIX.match(text)
    if match:
        text, year = match["title"], int(match["year"])
    alternatives = []
    while (match := _TRAILING_PARENS.match(text)) and not text.startswith("("):
        inner = match["inner"].strip()
        if inner.lower().startswith("a.k.a."):
            inner = inner[6:].strip()
        if not inner:
            break
        alternatives.insert(0, move_article(inner))
        text = match["rest"]
    title = move_article(text) or raw.strip()
    return title, year, tuple(alt for alt in alternatives if alt != title)


@dataclass
class _Format:
    name: str
    movies: str
    ratings: str
    tags: str | None = None
    users: str | None = None
    links: str | None = None
    extra: tuple[str, ...] = field(default=())


FORMATS = (
    _Format("csv-latest", "movies.csv", "ratings.csv", tags="tags.csv", links="links.csv"),
    _Format("ml-100k", "u.item", "u.data", users="u.user", extra=("u.genre",)),
    _Format("ml-1m", "movies.dat", "ratings.dat", users="users.dat"),
    _Format("ml-10m", "movies.dat", "ratings.dat", tags="tags.dat"),
)


class _Files:
    """The files of a release, in a folder (possibly one level down) or a zip archive."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = None
        self._names: dict[str, str] = {}
        if path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise ReleaseError(path.name, None, f"not a MovieLens folder or zip archive ({exc})") from exc
            for name in self._zip.namelist():
                base = name.rsplit("/", 1)[-1]
                if base and not name.startswith("__MACOSX") and name.count("/") <= 1:
                    self._names.setdefault(base, name)
        elif path.is_dir():
            for folder in [path, *sorted(p for p in path.iterdir() if p.is_dir())]:
                for child in folder.iterdir():
                    if child.is_file():
                        self._names.setdefault(child.name, str(child))
                if self._names:
                    break
        else:
            raise ReleaseError(str(path), None, "no such file or folder")

    def has(self, name: str) -> bool:
        return name in self._names

    def open(self, name: str):
        if self._zip is not None:
            return self._zip.open(self._names[name])
        target = Path(self._names[name]).resolve()
        if not target.is_relative_to(self.path.resolve()):
            # Never read it: an error quoting its first line would show a file the release does not own.
            raise ReleaseError(name, None, "is a link to a file outside the release folder; refusing to read it")
        return open(target, "rb")


def _lines(files: _Files, name: str, encoding: str, skip_header: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, text without newline) for each non-empty line, decoding strictly."""
    with files.open(name) as handle:
        for number, raw in _numbered_lines(handle, name):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ReleaseError(
                    name, number, f"bad encoding: not valid {encoding} (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if "\x00" in text:
                raise ReleaseError(name, number, "bad encoding: contains NUL bytes (binary data?)")
            text = text.rstrip("\r\n")
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if skip_header and number == 1:
                continue
            if text.strip():
                yield number, text


def _numbered_lines(handle, name: str):
    """(line number, raw line) of a binary file, refusing any line longer than MAX_LINE_BYTES."""
    readline, number = handle.readline, 0
    while raw := readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise ReleaseError(name, number, f"line longer than {MAX_LINE_BYTES:,} bytes")
        yield number, raw


def _detect_encoding(files: _Files, name: str) -> str:
    """UTF-8 if the whole file is valid UTF-8, else Latin-1 (what ml-100k/ml-1m/ml-10m use)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with files.open(name) as handle:
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8"


def _shown(value: str) -> str:
    """A value quoted for an error message, cut short: a hostile field may be 64 KB long."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


_OTHER_DELIMITERS = (",", ";", "\t", "|", "::")


def _split(name: str, number: int, text: str, sep: str, expected: int, exact: bool = True) -> list[str]:
    parts = text.split(sep)
    if len(parts) == expected or (not exact and len(parts) > expected):
        return parts
    if len(parts) == 1:
        for other in _OTHER_DELIMITERS:
            if other != sep and other in text:
                raise ReleaseError(name, number, f"wrong delimiter: expected {sep!r} between fields, found {other!r}")
    if len(parts) < expected:
        raise ReleaseError(name, number, f"truncated row: expected {expected} fields, found {len(parts)}")
    raise ReleaseError(name, number, f"too many fields: expected {expected}, found {len(parts)}")


def _check_header(name: str, number: int, text: str, header: list[str]) -> None:
    found = next(csv.reader([text]))
    if found != header:
        if len(found) == 1:
            for other in _OTHER_DELIMITERS:
                if other != "," and other in text:
                    raise ReleaseError(name, number, f"wrong delimiter: expected ',' between fields, found {other!r}")
        raise ReleaseError(name, number, f"unexpected header {_shown(','.join(found))}: expected {','.join(header)!r}")


def _csv_rows(files: _Files, name: str, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a comma-separated file whose first line must be `header`."""
    lines = _lines(files, name, "utf-8")
    first = next(lines, None)
    if first is None:
        raise ReleaseError(name, 1, "empty file: expected a header line")
    number, text = first
    _check_header(name, number, text, header)
    expected = len(header)
    for number, text in lines:
        if '"' in text:
            row = next(csv.reader([text]))
        else:
            row = text.split(",")
        if len(row) != expected:
            _split(name, number, text, ",", expected)
            raise ReleaseError(name, number, f"expected {expected} fields, found {len(row)}")
        yield number, row


def _int(name: str, number: int, value: str, what: str, maximum: int = MAX_ID) -> int:
    """value as a whole number from 0 to maximum (ASCII digits only), else ReleaseError."""
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise ReleaseError(name, number, f"{what} is not a whole number: {_shown(value)}")
    if len(digits) > 20 or int(digits) > maximum:
        raise ReleaseError(name, number, f"{what} {_shown(digits)} is out of range (0 to {maximum:,})")
    return int(digits)


def _score(name: str, number: int, value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise ReleaseError(name, number, f"rating is not a number: {_shown(value)}") from None
    if score not in VALID_SCORES:
        raise ReleaseError(name, number, f"rating {_shown(value)} outside the scale (0.5 to 5.0 in half stars)")
    return score


class Release:
    """One MovieLens release. Iterators stream the files; each call reads them afresh."""

    def __init__(self, path: Path, files: _Files, fmt: _Format):
        self.path, self._files, self._format = path, files, fmt
        self.format = fmt.name
        self._movie_ids: frozenset[int] | None = None
        self._encodings: dict[str, str] = {}

    def __repr__(self):
        return f"<Release {self.format} at {self.path}>"

    @property
    def has_users(self) -> bool:
        return self._format.users is not None

    @property
    def ratings_file(self) -> str:
        """Name of the ratings file (ratings.csv, u.data, ratings.dat), as errors name it."""
        return self._format.ratings

    def open_ratings_csv(self):
        """The raw bytes of ratings.csv (CSV releases only).

        Nothing here validates them: iter_ratings() and iter_rating_blocks() do.
        """
        if self.format != "csv-latest":
            raise ValueError(f"{self.format} ratings are not a CSV file")
        return self._files.open(self._format.ratings)

    @property
    def has_tags(self) -> bool:
        return self._format.tags is not None and self._files.has(self._format.tags)

    def _encoding(self, name: str) -> str:
        if self.format == "csv-latest":
            return "utf-8"
        if name not in self._encodings:
            self._encodings[name] = _detect_encoding(self._files, name)
        return self._encodings[name]

    def movie_ids(self) -> frozenset[int]:
        """MovieLens ids of every movie in the release (validates the movies file)."""
        if self._movie_ids is None:
            self._movie_ids = frozenset(movie.movielens_id for movie in self.iter_movies())
        return self._movie_ids

    # --- movies -------------------------------------------------------------------------
    def iter_movies(self) -> Iterator[MovieRecord]:
        """Every movie with its readable title, year, alternative titles, genres and ids."""
        if self.format == "csv-latest":
            yield from self._csv_movies()
        elif self.format == "ml-100k":
            yield from self._ml100k_movies()
        else:
            yield from self._dat_movies()

    def _check_unique(self, seen: set, name: str, number: int, movie_id: int) -> None:
        if movie_id in seen:
            raise ReleaseError(name, number, f"movie id {movie_id} appears twice")
        seen.add(movie_id)

    def _movie(self, name, number, movie_id, raw_title, genres, **ids) -> MovieRecord:
        title, year, alternatives = parse_title(raw_title)
        if len(title) > MAX_TITLE_LENGTH:
            raise ReleaseError(name, number, f"title longer than {MAX_TITLE_LENGTH} characters: {_shown(title)}")
        genres = tuple(dict.fromkeys(GENRE_ALIASES.get(g, g) for g in genres if g not in NO_GENRES))
        if any(len(genre) > MAX_GENRE_LENGTH for genre in genres):
            raise ReleaseError(name, number, f"a genre name longer than {MAX_GENRE_LENGTH} characters")
        return MovieRecord(movie_id, title, year, alternatives, genres, **ids)

    def _csv_movies(self) -> Iterator[MovieRecord]:
        links = self._links()
        seen: set[int] = set()
        name = self._format.movies
        for number, (movie_id, title, genres) in _csv_rows(self._files, name, ["movieId", "title", "genres"]):
            movie_id = _int(name, number, movie_id, "movieId")
            self._check_unique(seen, name, number, movie_id)
            imdb_id, tmdb_id = links.get(movie_id, (None, None))
            yield self._movie(name, number, movie_id, title, genres.split("|"), imdb_id=imdb_id, tmdb_id=tmdb_id)

    def _links(self) -> dict[int, tuple[str | None, int | None]]:
        name = self._format.links
        if not self._files.has(name):
            return {}
        links = {}
        for number, (movie_id, imdb_id, tmdb_id) in _csv_rows(self._files, name, ["movieId", "imdbId", "tmdbId"]):
            movie_id = _int(name, number, movie_id, "movieId")
            imdb = f"tt{_int(name, number, imdb_id, 'imdbId'):07d}" if imdb_id.strip() else None
            tmdb = _int(name, number, tmdb_id, "tmdbId") if tmdb_id.strip() else None
            links[movie_id] = (imdb, tmdb)
        return links

    def _genre_names_100k(self) -> list[str]:
        name = "u.genre"
        by_index = {}
        for number, text in _lines(self._files, name, self._encoding(name)):
            genre, index = _split(name, number, text, "|", 2)
            by_index[_int(name, number, index, "genre index")] = genre
        return [by_index[i] for i in sorted(by_index)]

    def _ml100k_movies(self) -> Iterator[MovieRecord]:
        name = self._format.movies
        genre_names = self._genre_names_100k() if self._files.has("u.genre") else []
        seen: set[int] = set()
        for number, text in _lines(self._files, name, self._encoding(name)):
            parts = _split(name, number, text, "|", 5 + len(genre_names or [0] * 19))
            movie_id = _int(name, number, parts[0], "movie id")
            self._check_unique(seen, name, number, movie_id)
            flags = parts[5:]
            if any(flag not in ("0", "1") for flag in flags):
                raise ReleaseError(name, number, "genre flags must be 0 or 1")
            genres = [genre for genre, flag in zip(genre_names, flags) if flag == "1"]
            record = self._movie(name, number, movie_id, parts[1], genres)
            if record.year is None and re.search(r"\d{4}$", parts[2]):
                record = MovieRecord(**{**record.__dict__, "year": int(parts[2][-4:])})
            yield record

    def _dat_movies(self) -> Iterator[MovieRecord]:
        name = self._format.movies
        seen: set[int] = set()
        for number, text in _lines(self._files, name, self._encoding(name)):
            movie_id, title, genres = _split(name, number, text, "::", 3)
            movie_id = _int(name, number, movie_id, "movie id")
            self._check_unique(seen, name, number, movie_id)
            yield self._movie(name, number, movie_id, title, genres.split("|"))

    # --- ratings ------------------------------------------------------------------------
    def iter_ratings(self) -> Iterator[tuple[str, int, float, int]]:
        """(user external id, movie external id, stars, unix timestamp) for every rating.

        Streams the file; rejects ratings outside the half-star scale, ratings of movies the
        release does not have, and a user rating the same movie twice in their block. This is
        the hot loop of every import (tens of millions of lines), so well-formed lines take a
        flat fast path and anything unusual goes to _explain_rating_line for its exact error.
        """
        known = self.movie_ids()
        name, movies_file = self._format.ratings, self._format.movies
        is_csv = self.format == "csv-latest"
        sep = "," if is_csv else ("\t" if self.format == "ml-100k" else "::")
        valid_scores = VALID_SCORES
        current_user, seen_movies = None, set()
        max_timestamp = MAX_TIMESTAMP
        with self._files.open(name) as handle:
            for number, raw in _numbered_lines(handle, name):
                try:
                    user, movie, score, timestamp = raw.decode().rstrip("\r\n").split(sep)
                    movie_id, stars, seconds = int(movie), float(score), int(timestamp)
                    if not (user.isdigit() and movie.isdigit() and timestamp.isdigit()) or (
                        seconds > max_timestamp or (len(user) > 18 and int(user) > MAX_USER_ID)
                    ):
                        raise ValueError
                except (UnicodeDecodeError, ValueError):
                    if self._explain_rating_line(name, number, raw, sep, is_csv):
                        continue
                if number == 1 and is_csv:
                    raise ReleaseError(name, 1, "missing header: expected 'userId,movieId,rating,timestamp'")
                if movie_id not in known:
                    raise ReleaseError(name, number, f"rating for an unknown movie {movie_id} (not in {movies_file})")
                if stars not in valid_scores:
                    raise ReleaseError(name, number, f"rating {score} outside the scale (0.5 to 5.0 in half stars)")
                if user != current_user:
                    current_user, seen_movies = user, set()
                if movie_id in seen_movies:
                    raise ReleaseError(name, number, f"user {user} rates movie {movie_id} twice")
                seen_movies.add(movie_id)
                yield user, movie_id, stars, seconds

    @staticmethod
    def _explain_rating_line(name: str, number: int, raw: bytes, sep: str, is_csv: bool) -> bool:
        """True for lines to skip (header, blank); otherwise raises the line's precise error."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReleaseError(
                name, number, f"bad encoding: not valid utf-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None
        text = text.rstrip("\r\n").lstrip("\ufeff") if number == 1 else text.rstrip("\r\n")
        if number == 1 and is_csv:
            _check_header(name, number, text, ["userId", "movieId", "rating", "timestamp"])
            return True
        if not text.strip():
            return True
        parts = next(csv.reader([text])) if is_csv and '"' in text else text.split(sep)
        if len(parts) != 4:
            _split(name, number, text, sep, 4)
        user, movie, score, timestamp = parts
        _int(name, number, user, "user id", MAX_USER_ID)
        _int(name, number, movie, "movie id")
        _int(name, number, timestamp, "timestamp", MAX_TIMESTAMP)
        _score(name, number, score)
        raise ReleaseError(name, number, "malformed row")

    RATINGS_HEADER = b"userId,movieId,rating,timestamp"

    def iter_rating_blocks(self, block_bytes: int | None = None) -> Iterator[RatingBlock]:
        """ratings.csv of a CSV release as blocks of arrays, parsed with numpy (tens of times faster
        than iter_ratings), for bulk loaders.

        Reads only the plain layout every published ratings.csv has: the exact header, then lines
        `user,movie,D.D,timestamp` (digits; the stars one digit, a dot, one digit), no user id with
        a leading zero, no blank lines, "\\n" or "\\r\\n" line ends. Every row it yields passed the checks
        iter_ratings() makes except "the same user rates a movie twice" (the database's unique
        constraint catches that). On anything else (other layouts, or a row iter_ratings() would
        reject) it raises UnusualLayout: read the file with iter_ratings() instead, which accepts
        it or raises the ReleaseError naming file, line and reason.
        """
        if self.format != "csv-latest":
            raise UnusualLayout(f"{self.format} ratings are not a CSV file")
        block_bytes = block_bytes or RATING_BLOCK_BYTES
        if max(self.movie_ids(), default=0) > MAX_DENSE_MOVIE_ID:
            raise UnusualLayout(f"movie ids above {MAX_DENSE_MOVIE_ID:,}")
        known_ids = np.fromiter(self.movie_ids(), dtype=np.int64)
        known = np.zeros(int(known_ids.max(initial=0)) + 1, dtype=bool)
        known[known_ids] = True
        with self.open_ratings_csv() as handle:
            if handle.readline().rstrip(b"\r\n") != self.RATINGS_HEADER:
                raise UnusualLayout("header")
            rest = b""
            while True:
                data = handle.read(block_bytes)
                if not data:
                    if rest:
                        yield _parse_rating_block(rest + b"\n", known)
                    return
                data = rest + data
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if len(rest) > MAX_LINE_BYTES:  # the exact reader names the line
                    raise UnusualLayout("a line longer than MAX_LINE_BYTES")
                if cut:
                    yield _parse_rating_block(data[:cut], known)

    # --- tags ---------------------------------------------------------------------------
    def iter_tags(self) -> Iterator[TagRecord]:
        """Free-text tags users put on movies (empty for releases without a tags file)."""
        if not self.has_tags:
            return
        known = self.movie_ids()
        name = self._format.tags
        if self.format == "csv-latest":
            rows = _csv_rows(self._files, name, ["userId", "movieId", "tag", "timestamp"])
        else:
            rows = (
                (n, _split(name, n, text, "::", 4))
                for n, text in _lines(self._files, name, self._encoding(name))
            )
        for number, (user, movie, tag, timestamp) in rows:
            movie_id = _int(name, number, movie, "movie id")
            if movie_id not in known:
                raise ReleaseError(name, number, f"tag for an unknown movie {movie_id} (not in {self._format.movies})")
            _int(name, number, user, "user id", MAX_USER_ID)
            yield TagRecord(user.strip(), movie_id, tag.strip(), _int(name, number, timestamp, "timestamp", MAX_TIMESTAMP))

    # --- users --------------------------------------------------------------------------
    def iter_users(self) -> Iterator[UserRecord]:
        """Users with demographics (ml-100k, ml-1m); other releases only know user ids."""
        name = self._format.users
        if name is None or not self._files.has(name):
            return
        sep = "|" if self.format == "ml-100k" else "::"
        for number, text in _lines(self._files, name, self._encoding(name)):
            user, a, b, c, zip_code = _split(name, number, text, sep, 5)
            _int(name, number, user, "user id", MAX_USER_ID)
            if self.format == "ml-100k":
                age, gender, occupation = _int(name, number, a, "age", 150), b, c
                age_range = ""
            else:
                gender, code = a, _int(name, number, b, "age")
                if code not in ML1M_AGE_RANGES:
                    raise ReleaseError(name, number, f"unknown age code {code}")
                occupation_code = _int(name, number, c, "occupation")
                if occupation_code not in ML1M_OCCUPATIONS:
                    raise ReleaseError(name, number, f"unknown occupation code {occupation_code}")
                age, age_range = ML1M_AGE_MIDPOINTS[code], ML1M_AGE_RANGES[code]
                occupation = ML1M_OCCUPATIONS[occupation_code]
            if gender not in ("M", "F"):
                raise ReleaseError(name, number, f"gender must be M or F, found {gender!r}")
            birth_year = COLLECTION_YEAR[self.format] - age if age else None
            if occupation == "none":
                occupation = ""
            yield UserRecord(user.strip(), gender, age, age_range, birth_year, occupation, zip_code.strip())


_PLAIN_BYTES = b"0123456789,.\n"
RATING_BLOCK_BYTES = 4 << 20  # about 160,000 ratings: a few tens of MB of arrays per block


def _parse_rating_block(data: bytes, known: np.ndarray) -> RatingBlock:
    """Whole lines of ratings.csv, each `user,movie,D.D,timestamp` and ending in a newline -> RatingBlock.

    Raises UnusualLayout for anything else. Vectorised: numpy finds the separators and checks
    each one sits where it should, then parses every number in one call (C's strtol).
    """
    if b"\r" in data:  # Windows line ends, as some copies of ml-latest-small have
        data = data.replace(b"\r\n", b"\n")
    if data.translate(None, _PLAIN_BYTES):
        raise UnusualLayout("characters other than digits, commas, dots and newlines")
    raw = np.frombuffer(data, dtype=np.uint8)
    separators = np.flatnonzero((raw == 44) | (raw == 46) | (raw == 10))
    if len(separators) % 5:
        raise UnusualLayout("rows not shaped user,movie,D.D,timestamp")
    separators = separators.reshape(-1, 5)
    kinds = raw[separators]
    if not ((kinds == np.array([44, 44, 46, 44, 10], dtype=np.uint8)).all()):
        raise UnusualLayout("rows not shaped user,movie,D.D,timestamp")
    line_starts = np.empty(len(separators), dtype=np.int64)
    line_starts[0] = 0
    line_starts[1:] = separators[:-1, 4] + 1
    widths = np.diff(np.column_stack([line_starts - 1, separators]), axis=1) - 1  # user, movie, D, D, timestamp
    if widths.min() < 1 or widths[:, [0, 1, 4]].max() > 15 or (widths[:, 2:4] != 1).any():
        raise UnusualLayout("empty, overlong or multi-digit-star fields")
    if ((raw[line_starts] == 48) & (widths[:, 0] > 1)).any():
        raise UnusualLayout("user id with a leading zero (kept as text by iter_ratings)")
    numbers = np.fromstring(data.replace(b".", b",").replace(b"\n", b","), dtype=np.int64, sep=",")
    if len(numbers) != separators.size:
        raise UnusualLayout("a field that is not a number")
    users, movies, whole, tenths, timestamps = numbers.reshape(-1, 5).T
    if movies.max() >= len(known) or not known[movies].all():
        raise UnusualLayout("rating for an unknown movie")
    scores = whole + tenths / 10  # the float Python's float() reads from the same text
    doubled = scores * 2
    if not ((doubled == np.round(doubled)) & (doubled >= 1) & (doubled <= 10)).all():
        raise UnusualLayout("rating outside the scale")
    if timestamps.max() >= 10**11:  # past year 5000: leave it to the exact reader and the database
        raise UnusualLayout("implausible timestamp")
    return RatingBlock(users.copy(), movies.copy(), scores, timestamps.copy(), data)


def open_release(path) -> Release:
    """Open a MovieLens release (folder or .zip) and detect its layout.

    Raises ReleaseError when the path holds no known release.
    """
    path = Path(path)
    files = _Files(path)
    for fmt in FORMATS:
        if files.has(fmt.movies) and files.has(fmt.ratings):
            if fmt.name == "ml-1m" and not files.has("users.dat"):
                continue
            return Release(path, files, fmt)
    raise ReleaseError(
        path.name, None,
        "no MovieLens release found: expected movies.csv + ratings.csv, u.item + u.data, "
        "or movies.dat + ratings.dat",
    )
