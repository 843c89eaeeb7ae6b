"""Import a MovieLens release into the catalogue: validate everything, then write it at once.

Phase 1 streams every file through catalog.importers.formats (which rejects malformed input
with file, line and reason) into temporary staging tables; nothing in the catalogue changes.
Phase 2 merges the staging tables in one transaction with set-based upserts keyed on
movielens_id, (source, external_id), (user, movie) and (user, movie, tag), so a re-import
changes nothing, a newer release updates and adds, and a killed import leaves no trace.
On PostgreSQL the staging tables are filled with COPY; on SQLite with batched executemany.
"""
from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from catalog.importers.formats import MovieRecord, Release, ReleaseError, open_release
from catalog.models import Genre, Movie, Rating, Tag
from catalog.services import refresh_movie_stats
from catalog.text import normalize

BATCH_ROWS = 50_000
RATING_STAGE = "import_rating_stage"
TAG_STAGE = "import_tag_stage"
USER_MAP = "import_user_map"
TAG_MAX_LENGTH = Tag._meta.get_field("tag").max_length


@dataclass
class ImportSummary:
    format: str = ""
    movies_in_file: int = 0
    movies_created: int = 0
    movies_updated: int = 0
    users_in_file: int = 0
    users_created: int = 0
    users_updated: int = 0
    ratings_in_file: int = 0
    ratings_written: int = 0
    tags_in_file: int = 0
    tags_written: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        lines = [
            f"Release format: {self.format}",
            f"Movies:  {self.movies_in_file:>10,} in the release, {self.movies_created:,} new, {self.movies_updated:,} updated",
            f"Users:   {self.users_in_file:>10,} in the release, {self.users_created:,} new, {self.users_updated:,} updated",
            f"Ratings: {self.ratings_in_file:>10,} in the release, {self.ratings_written:,} new or changed",
            f"Tags:    {self.tags_in_file:>10,} in the release, {self.tags_written:,} new",
        ]
        rate = self.ratings_in_file / self.seconds if self.seconds else 0
        lines.append(f"Time:    {self.seconds:10.1f} s ({rate:,.0f} ratings/s)")
        if self.skipped:
            lines.append("Skipped:")
            lines += [f"  {count:,} {reason}" for reason, count in self.skipped.most_common()]
        else:
            lines.append("Skipped: none")
        return lines


def _bar(progress: bool, desc: str, total=None):
    return tqdm(desc=desc, total=total, unit=" rows", unit_scale=True, disable=not progress, mininterval=0.5)


def import_movielens(path, *, progress: bool = True) -> ImportSummary:
    """Import the MovieLens release at `path` (folder or .zip); see the module docstring.

    Raises catalog.importers.formats.ReleaseError, before any write, on malformed input.
    """
    started = time.perf_counter()
    release = open_release(path)
    summary = ImportSummary(format=release.format)
    movies = _read_movies(release, summary, progress)
    users = {user.external_id: user for user in release.iter_users()}
    _create_stages()
    try:
        rating_users = _stage_ratings(release, summary, progress)
        tag_users = _stage_tags(release, summary, progress)
        summary.users_in_file = len(set(users) | rating_users | tag_users)
        with transaction.atomic():
            movie_ids = _upsert_movies(movies, summary, progress)
            _link_genres(movies, movie_ids)
            _upsert_users(users, rating_users | tag_users, summary)
            summary.ratings_written = _merge_ratings(progress, summary.ratings_in_file)
            summary.tags_written = _merge_tags(progress)
            refresh_movie_stats()
    finally:
        _drop_stages()
    summary.seconds = time.perf_counter() - started
    return summary


# --- phase 1: read and validate ---------------------------------------------------------
def _read_movies(release: Release, summary: ImportSummary, progress: bool) -> list[MovieRecord]:
    movies, seen_tmdb, seen_imdb = [], set(), set()
    for movie in tqdm(release.iter_movies(), desc="Reading movies", unit=" rows", disable=not progress):
        # links.csv occasionally maps two MovieLens movies to one TMDB/IMDb id; the first keeps it.
        if movie.tmdb_id is not None:
            if movie.tmdb_id in seen_tmdb:
                summary.skipped["duplicate tmdbId in links.csv (the movie imports without it)"] += 1
                movie = MovieRecord(**{**movie.__dict__, "tmdb_id": None})
            seen_tmdb.add(movie.tmdb_id)
        if movie.imdb_id is not None:
            if movie.imdb_id in seen_imdb:
                summary.skipped["duplicate imdbId in links.csv (the movie imports without it)"] += 1
                movie = MovieRecord(**{**movie.__dict__, "imdb_id": None})
            seen_imdb.add(movie.imdb_id)
        if movie.year is not None and not 1870 <= movie.year <= 2100:
            summary.skipped["implausible year (the movie imports without it)"] += 1
            movie = MovieRecord(**{**movie.__dict__, "year": None})
        movies.append(movie)
    summary.movies_in_file = len(movies)
    return movies


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _create_stages() -> None:
    _drop_stages()
    temp = "TEMPORARY" if _is_postgres() else "TEMP"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE {temp} TABLE {RATING_STAGE} (user_ext varchar(64) NOT NULL, movie_ml integer NOT NULL, "
            "score double precision NOT NULL, ts bigint NOT NULL)"
        )
        cursor.execute(
            f"CREATE {temp} TABLE {TAG_STAGE} (user_ext varchar(64) NOT NULL, movie_ml integer NOT NULL, "
            f"tag varchar({TAG_MAX_LENGTH}) NOT NULL, ts bigint NOT NULL)"
        )


def _drop_stages() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RATING_STAGE}")
        cursor.execute(f"DROP TABLE IF EXISTS {TAG_STAGE}")
        cursor.execute(f"DROP TABLE IF EXISTS {USER_MAP}")


class _Stager:
    """Appends rows to a staging table in large batches: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self, table: str, columns: tuple[str, ...]):
        self.table, self.columns, self.rows = table, columns, []

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        with connection.cursor() as cursor:
            if _is_postgres():
                with cursor.cursor.copy(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN") as copy:
                    for row in self.rows:
                        copy.write_row(row)
            else:
                placeholders = ", ".join("%s" for _ in self.columns)
                cursor.executemany(
                    f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({placeholders})", self.rows
                )
        self.rows = []


def _stage_ratings(release: Release, summary: ImportSummary, progress: bool) -> set[str]:
    """Validate every rating and put it in the staging table; returns the user ids seen.

    On PostgreSQL a CSV release is validated by streaming it once through the reader, then its
    bytes are COPYed into the staging table unchanged (far cheaper than re-encoding each row).
    """
    users: set[str] = set()
    raw_copy = _is_postgres() and release.format == "csv-latest"
    stager = None if raw_copy else _Stager(RATING_STAGE, ("user_ext", "movie_ml", "score", "ts"))
    count = 0
    with _bar(progress, "Validating ratings" if raw_copy else "Validating and staging ratings") as bar:
        for count, row in enumerate(release.iter_ratings(), start=1):
            users.add(row[0])
            if stager is not None:
                stager.add(row)
            if not count % 10_000:
                bar.update(10_000)
        bar.update(count % 10_000)
        if stager is not None:
            stager.flush()
    summary.ratings_in_file = count
    if raw_copy:
        with _bar(progress, "Staging ratings (COPY)", total=count) as bar, connection.cursor() as cursor:
            with release.open_ratings_csv() as source, cursor.cursor.copy(
                f"COPY {RATING_STAGE} (user_ext, movie_ml, score, ts) FROM STDIN (FORMAT csv, HEADER true)"
            ) as copy:
                for block in iter(lambda: source.read(1 << 20), b""):
                    copy.write(block)
            bar.update(count)
    return users


def _stage_tags(release: Release, summary: ImportSummary, progress: bool) -> set[str]:
    users: set[str] = set()
    stager = _Stager(TAG_STAGE, ("user_ext", "movie_ml", "tag", "ts"))
    with _bar(progress, "Validating and staging tags") as bar:
        for tag in release.iter_tags():
            summary.tags_in_file += 1
            bar.update()
            if not tag.tag:
                summary.skipped["empty tag"] += 1
                continue
            if len(tag.tag) > TAG_MAX_LENGTH:
                summary.skipped[f"tag longer than {TAG_MAX_LENGTH} characters"] += 1
                continue
            users.add(tag.user_external_id)
            stager.add((tag.user_external_id, tag.movie_external_id, tag.tag, tag.timestamp))
        stager.flush()
    return users


# --- phase 2: write -----------------------------------------------------------------------
_MOVIE_FIELDS = ("title", "alternative_titles", "year", "imdb_id", "tmdb_id")


def _upsert_movies(movies: list[MovieRecord], summary: ImportSummary, progress: bool) -> dict[int, int]:
    """Create new movies and update changed ones; returns {movielens_id: Movie.pk}."""
    existing = {m.movielens_id: m for m in Movie.objects.filter(movielens_id__isnull=False).only("id", "movielens_id", *_MOVIE_FIELDS)}
    # A movie already in the catalogue under its IMDb/TMDB id (e.g. from metadata) is adopted.
    by_imdb = dict(Movie.objects.filter(movielens_id__isnull=True, imdb_id__isnull=False).values_list("imdb_id", "pk"))
    by_tmdb = dict(Movie.objects.filter(movielens_id__isnull=True, tmdb_id__isnull=False).values_list("tmdb_id", "pk"))
    to_create, to_update = [], []
    for record in tqdm(movies, desc="Writing movies", unit=" rows", disable=not progress):
        values = {
            "title": record.title[:300],
            "alternative_titles": "\n".join(record.alternative_titles),
            "year": record.year,
            "imdb_id": record.imdb_id,
            "tmdb_id": record.tmdb_id,
        }
        movie = existing.get(record.movielens_id)
        if movie is None:
            adopted_pk = by_imdb.get(record.imdb_id) or by_tmdb.get(record.tmdb_id)
            if adopted_pk:
                movie = Movie.objects.get(pk=adopted_pk)
                movie.movielens_id = record.movielens_id
                to_update.append(movie)
            else:
                movie = Movie(movielens_id=record.movielens_id)
                to_create.append(movie)
        elif all(getattr(movie, name) == value for name, value in values.items()):
            continue
        else:
            to_update.append(movie)
        for name, value in values.items():
            setattr(movie, name, value)
        movie.search_title = normalize("\n".join([movie.title, movie.alternative_titles]))
    # Ids taken by movies that change hands must be freed before they are given to others.
    if to_update:
        now = timezone.now()
        for movie in to_update:
            movie.updated_at = now
        Movie.objects.filter(pk__in=[m.pk for m in to_update]).update(imdb_id=None, tmdb_id=None)
        Movie.objects.bulk_update(
            to_update, [*_MOVIE_FIELDS, "movielens_id", "search_title", "updated_at"], batch_size=2000
        )
    Movie.objects.bulk_create(to_create, batch_size=2000)
    summary.movies_created, summary.movies_updated = len(to_create), len(to_update)
    return dict(Movie.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "pk"))


def _link_genres(movies: list[MovieRecord], movie_ids: dict[int, int]) -> None:
    names = sorted({genre for movie in movies for genre in movie.genres})
    existing = {g.name for g in Genre.objects.filter(name__in=names)}
    Genre.objects.bulk_create([Genre(name=n, slug=slugify(n)) for n in names if n not in existing])
    genre_ids = dict(Genre.objects.filter(name__in=names).values_list("name", "pk"))
    Link = Movie.genres.through
    wanted = {(movie_ids[m.movielens_id], genre_ids[g]) for m in movies for g in m.genres}
    ours = [movie_ids[m.movielens_id] for m in movies]
    current = set()
    for start in range(0, len(ours), 5000):
        current |= set(
            Link.objects.filter(movie_id__in=ours[start : start + 5000]).values_list("movie_id", "genre_id")
        )
    stale = current - wanted
    for start in range(0, len(stale), 5000):
        chunk = list(stale)[start : start + 5000]
        for movie_id, genre_id in chunk:
            Link.objects.filter(movie_id=movie_id, genre_id=genre_id).delete()
    with connection.cursor() as cursor:  # plain rows: model instances cost more than the insert itself
        cursor.executemany(
            f"INSERT INTO {Link._meta.db_table} (movie_id, genre_id) VALUES (%s, %s)", sorted(wanted - current)
        )


def _upsert_users(demographics: dict, external_ids: set[str], summary: ImportSummary) -> None:
    User = get_user_model()
    source = User.Source.MOVIELENS
    existing = {u.external_id: u for u in User.objects.filter(source=source)}
    fields = ("gender", "birth_year", "occupation")
    to_create, to_update = [], []
    for external_id in sorted(set(demographics) | external_ids, key=int):
        record = demographics.get(external_id)
        values = (
            {"gender": record.gender, "birth_year": record.birth_year, "occupation": record.occupation[:64]}
            if record
            else {}
        )
        user = existing.get(external_id)
        if user is None:
            to_create.append(
                User(
                    username=f"ml-{external_id}",
                    source=source,
                    external_id=external_id,
                    # What make_password(None) stores, minus 40 secrets.choice() calls per user.
                    password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
                    **values,
                )
            )
        elif values and any(getattr(user, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(user, key, value)
            to_update.append(user)
    User.objects.bulk_create(to_create, batch_size=5000)
    User.objects.bulk_update(to_update, fields, batch_size=2000)
    # The ratings merge joins on this indexed map (the external-id index is partial, and
    # SQLite's planner cannot use it for a join).
    temp = "TEMPORARY" if _is_postgres() else "TEMP"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE {temp} TABLE {USER_MAP} (external_id varchar(64) PRIMARY KEY, id bigint NOT NULL)")
        cursor.execute(
            f"INSERT INTO {USER_MAP} (external_id, id) SELECT external_id, id FROM {User._meta.db_table} "
            "WHERE source = %s AND external_id <> ''",
            [source],
        )
    summary.users_created, summary.users_updated = len(to_create), len(to_update)


def _timestamp_sql(column: str) -> str:
    if _is_postgres():
        return f"to_timestamp({column})"
    return f"datetime({column}, 'unixepoch')"


# A load at least this large, and at least twice the rows already there, takes the bulk path below.
BULK_PATH_MIN_ROWS = 200_000


def _merge_ratings(progress: bool, staged_rows: int) -> int:
    """Upsert staged ratings; only new pairs and changed scores are written. Returns that count."""
    rating = Rating._meta.db_table
    bulk = _is_postgres() and staged_rows >= BULK_PATH_MIN_ROWS and staged_rows >= 2 * _estimated_rows(rating)
    with _bar(progress, "Writing ratings (set-based)", total=1) as bar:
        written = _bulk_merge_ratings(rating) if bulk else _upsert_ratings(rating)
        bar.update()
    return written


def _staged_ratings_sql(select: str) -> str:
    return f"""SELECT {select} FROM {RATING_STAGE} s
               JOIN {USER_MAP} u ON u.external_id = s.user_ext
               JOIN {Movie._meta.db_table} m ON m.movielens_id = s.movie_ml"""


def _upsert_ratings(rating: str) -> int:
    ts = _timestamp_sql("s.ts")
    with connection.cursor() as cursor:
        # The reader catches a pair repeated within a user's block; this catches the rest.
        cursor.execute(
            f"SELECT user_ext, movie_ml FROM {RATING_STAGE} GROUP BY user_ext, movie_ml HAVING COUNT(*) > 1 LIMIT 1"
        )
        repeated = cursor.fetchone()
        if repeated:
            raise ReleaseError("ratings", None, f"user {repeated[0]} rates movie {repeated[1]} more than once")
        cursor.execute(
            f"""INSERT INTO {rating} (user_id, movie_id, score, created_at, updated_at)
                {_staged_ratings_sql(f"u.id, m.id, s.score, {ts}, {ts}")}
                WHERE true
                ON CONFLICT (user_id, movie_id) DO UPDATE
                SET score = excluded.score, updated_at = excluded.updated_at
                WHERE {rating}.score <> excluded.score"""
        )
        return cursor.rowcount


def _bulk_merge_ratings(rating: str) -> int:
    """PostgreSQL, big loads: update changed scores, then plain-INSERT the new pairs with the
    foreign keys, unique constraint and secondary indexes dropped and rebuilt afterwards (a
    speculative ON CONFLICT insert per row is several times slower than a bulk build).
    Re-adding the unique constraint is what rejects a release rating one pair twice.
    """
    updated = 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {rating})")
        if cursor.fetchone()[0]:
            cursor.execute(
                f"""UPDATE {rating} r SET score = s.score, updated_at = to_timestamp(s.ts)
                    FROM {RATING_STAGE} s
                    JOIN {USER_MAP} u ON u.external_id = s.user_ext
                    JOIN {Movie._meta.db_table} m ON m.movielens_id = s.movie_ml
                    WHERE r.user_id = u.id AND r.movie_id = m.id AND r.score <> s.score"""
            )
            updated = cursor.rowcount
        with _without_secondary_indexes(rating):
            cursor.execute(
                f"""INSERT INTO {rating} (user_id, movie_id, score, created_at, updated_at)
                    {_staged_ratings_sql("u.id, m.id, s.score, to_timestamp(s.ts), to_timestamp(s.ts)")}
                    WHERE NOT EXISTS (SELECT 1 FROM {rating} r WHERE r.user_id = u.id AND r.movie_id = m.id)"""
            )
            inserted = cursor.rowcount
    return updated + inserted


def _estimated_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


@contextlib.contextmanager
def _without_secondary_indexes(table: str):
    """PostgreSQL's advice for big loads: drop foreign keys, unique constraints and secondary
    indexes, rebuild them after (one sort per index instead of one probe per row).

    Runs inside the import transaction, so a failure or a killed process restores them with
    everything else. The primary key stays. The table is locked for the duration: this path
    is for big (initial) loads only.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC""",
            [table],
        )
        constraints = cursor.fetchall()  # unique ones first: foreign keys are re-added last
        cursor.execute(
            """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = %s::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _merge_tags(progress: bool) -> int:
    ts = _timestamp_sql("s.ts")
    with _bar(progress, "Writing tags", total=1) as bar, connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Tag._meta.db_table} (user_id, movie_id, tag, created_at)
                SELECT u.id, m.id, s.tag, {ts}
                FROM {TAG_STAGE} s
                JOIN {USER_MAP} u ON u.external_id = s.user_ext
                JOIN {Movie._meta.db_table} m ON m.movielens_id = s.movie_ml
                WHERE true
                ON CONFLICT (user_id, movie_id, tag) DO NOTHING""",
        )
        bar.update()
        return cursor.rowcount
