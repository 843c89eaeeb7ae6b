"""Import a MovieLens release into the catalogue: validate everything, then write it at once.

Phase 1 streams every file through catalog.importers.formats (which rejects malformed input
with file, line and reason) into temporary staging tables; nothing in the catalogue changes.
Phase 2 merges the staging tables in one transaction with set-based upserts keyed on
movielens_id, (source, external_id), (user, movie) and (user, movie, tag), so a re-import
changes nothing, a newer release updates and adds, and a killed import leaves no trace.
On PostgreSQL the staging tables are filled with COPY; on SQLite with batched executemany.

The first load of a CSV release into PostgreSQL (no ratings stored yet) skips the ratings
staging table: inside the one transaction, formats.Release.iter_rating_blocks() parses and
checks ratings.csv with numpy, user and movie ids are resolved in memory, and the rows go
straight into the ratings table with a binary COPY while its indexes and foreign keys are
dropped (rebuilt, and so re-checked, before commit). A file that is not in the plain layout
that reader takes, or a pair rated twice, rolls that back and is read again by the exact
reader (Release.iter_ratings), which raises the same file/line/reason error as ever.
pandas is not used on this path: numpy's vectorised block parser and PostgreSQL's COPY are
faster than a DataFrame round trip at tens of millions of rows, and keep memory bounded by block.

A database holding the demo catalogue is refused (DemoCatalogueError): simulated users and
demo films would be mixed with the release. With remove_demo=True the demo is removed first,
inside the import's transaction.
"""
from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from catalog.demo.loader import demo_footprint, remove_demo_catalogue
from catalog.importers.formats import (
    MAX_DENSE_MOVIE_ID,
    MovieRecord,
    Release,
    ReleaseError,
    UnusualLayout,
    open_release,
)
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
    ratings_path: str = ""
    steps: dict = field(default_factory=dict)
    rebuilt: dict = field(default_factory=dict)
    demo_removed: str = ""

    @contextlib.contextmanager
    def step(self, name: str):
        """Time a step of the import; the summary lists them in order."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started

    def lines(self) -> list[str]:
        lines = [self.demo_removed] if self.demo_removed else []
        lines += [
            f"Release format: {self.format}",
            f"Movies:  {self.movies_in_file:>10,} in the release, {self.movies_created:,} new, {self.movies_updated:,} updated",
            f"Users:   {self.users_in_file:>10,} in the release, {self.users_created:,} new, {self.users_updated:,} updated",
            f"Ratings: {self.ratings_in_file:>10,} in the release, {self.ratings_written:,} new or changed",
            f"Tags:    {self.tags_in_file:>10,} in the release, {self.tags_written:,} new",
        ]
        rate = self.ratings_in_file / self.seconds if self.seconds else 0
        lines.append(f"Time:    {self.seconds:10.1f} s ({rate:,.0f} ratings/s)")
        if self.ratings_path:
            lines.append(f"Ratings path: {self.ratings_path}")
        if self.steps:
            lines.append("Steps:   " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.steps.items()))
        if self.rebuilt:
            lines.append("Rebuilt: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.rebuilt.items()))
        if self.skipped:
            lines.append("Skipped:")
            lines += [f"  {count:,} {reason}" for reason, count in self.skipped.most_common()]
        else:
            lines.append("Skipped: none")
        return lines


def _bar(progress: bool, desc: str, total=None):
    return tqdm(desc=desc, total=total, unit=" rows", unit_scale=True, disable=not progress, mininterval=0.5)


class DemoCatalogueError(ValueError):
    """The database holds the demo catalogue, which real data must not be mixed with."""


def refuse_demo_catalogue() -> None:
    """Raise DemoCatalogueError (saying how to remove the demo) if the database holds it."""
    footprint = demo_footprint()
    if footprint:
        raise DemoCatalogueError(
            f"This database holds the demo catalogue ({footprint}); real data would be mixed with it. "
            "Remove it first with `python manage.py remove_demo` (simulated users, their ratings and "
            "demo-only films, nothing else), import with --remove-demo, or use a new DATABASE_URL."
        )


def import_movielens(path, *, progress: bool = True, remove_demo: bool = False) -> ImportSummary:
    """Import the MovieLens release at `path` (folder or .zip); see the module docstring.

    Raises catalog.importers.formats.ReleaseError on malformed input, with nothing written: before
    any write, or (a first load on PostgreSQL, which checks ratings.csv as it COPYs it) after
    rolling the one import transaction back. Raises DemoCatalogueError, before reading anything,
    when the database holds the demo catalogue, unless `remove_demo` (then it is removed in the
    import's transaction: a rejected release leaves the demo where it was).
    """
    started = time.perf_counter()
    if not remove_demo:
        refuse_demo_catalogue()
    release = open_release(path)
    summary = ImportSummary(format=release.format)
    with summary.step("read movies"):
        movies = _read_movies(release, summary, progress)
    users = {user.external_id: user for user in release.iter_users()}
    # First load of a CSV release into PostgreSQL: ratings go straight to their table (below).
    direct = _is_postgres() and release.format == "csv-latest" and not Rating.objects.exists()
    _create_stages()
    try:
        rating_users = None
        if not direct:
            with summary.step("check and stage ratings"):
                rating_users = _stage_ratings(release, summary, progress)
        with summary.step("check and stage tags"):
            tag_users = _stage_tags(release, summary, progress)
        with transaction.atomic():
            _tune_session()
            if remove_demo and demo_footprint():
                with summary.step("remove the demo catalogue"):
                    summary.demo_removed = str(remove_demo_catalogue())
            with summary.step("write movies"):
                movie_ids = _upsert_movies(movies, summary, progress)
            with summary.step("link genres"):
                _link_genres(movies, movie_ids)
            if direct:
                rating_users = _load_ratings_directly(release, movie_ids, summary, progress)
            if rating_users is None:  # not the plain layout (or ratings arrived meanwhile): the general path
                direct = False
                with summary.step("check and stage ratings"):
                    rating_users = _stage_ratings(release, summary, progress)
            with summary.step("write users"):
                _upsert_users(users, rating_users | tag_users, summary)
            summary.users_in_file = len(set(users) | rating_users | tag_users)
            if not direct:
                with summary.step("merge ratings"):
                    summary.ratings_written = _merge_ratings(progress, summary.ratings_in_file)
            with summary.step("merge tags"):
                summary.tags_written = _merge_tags(progress)
            if not direct:  # (a first load wrote the stats of what it loaded)
                with summary.step("movie rating stats"):
                    refresh_movie_stats()
    finally:
        _drop_stages()
    summary.seconds = time.perf_counter() - started
    return summary


def _tune_session() -> None:
    """PostgreSQL settings for this transaction only: a big import's commit need not wait for the
    WAL flush (a crash loses the whole import or nothing), and sorts and index builds get memory."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cursor.execute("SET LOCAL work_mem = '64MB'")


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

    On PostgreSQL a CSV release in the plain layout is checked block by block with numpy
    (Release.iter_rating_blocks) and each block's text is COPYed into the staging table as it
    goes. Anything else, or a file that turns out not to be plain, is read by the exact reader
    (Release.iter_ratings), which names the file, line and reason of any error.
    """
    if _is_postgres() and release.format == "csv-latest":
        users: set[str] = set()
        count = 0
        try:
            # In a savepoint: a block that is not plain aborts the COPY, and the rollback empties the stage.
            with transaction.atomic(), _bar(progress, "Checking and staging ratings") as bar, \
                    connection.cursor() as cursor:
                with connection.wrap_database_errors, cursor.cursor.copy(
                    f"COPY {RATING_STAGE} (user_ext, movie_ml, score, ts) FROM STDIN (FORMAT csv)"
                ) as copy:
                    for block in release.iter_rating_blocks():
                        users.update(map(str, np.unique(block.users).tolist()))
                        copy.write(block.lines)
                        count += len(block.users)
                        bar.update(len(block.users))
        except UnusualLayout:
            pass
        else:
            summary.ratings_in_file = count
            return users
    users = set()
    stager = _Stager(RATING_STAGE, ("user_ext", "movie_ml", "score", "ts"))
    count = 0
    with _bar(progress, "Validating and staging ratings") as bar:
        for count, row in enumerate(release.iter_ratings(), start=1):
            users.add(row[0])
            stager.add(row)
            if not count % 10_000:
                bar.update(10_000)
        bar.update(count % 10_000)
        stager.flush()
    summary.ratings_in_file = count
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


# --- first load into PostgreSQL: ratings straight into their table -------------------------
# One row of PostgreSQL's binary COPY format for (id, user_id, movie_id, score, created_at, updated_at):
# a 2-byte field count, then each field as a 4-byte length and its 8-byte big-endian value.
_COPY_COLUMNS = ("id", "user_id", "movie_id", "score", "created_at", "updated_at")
_COPY_ROW_BYTES = 2 + 12 * len(_COPY_COLUMNS)
_COPY_ROW_TEMPLATE = np.frombuffer(
    len(_COPY_COLUMNS).to_bytes(2, "big") + (8).to_bytes(4, "big").join([b""] + [bytes(8)] * len(_COPY_COLUMNS)),
    dtype=np.uint8,
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"
_POSTGRES_EPOCH = 946_684_800  # 2000-01-01 UTC in unix seconds: timestamptz counts microseconds from it
_DUPLICATE_KEY = re.compile(r"\(user_id, movie_id\)=\((\d+), (\d+)\)")


def _load_ratings_directly(release: Release, movie_ids: dict[int, int], summary: ImportSummary,
                           progress: bool) -> set[str] | None:
    """PostgreSQL, CSV release, no ratings stored yet: COPY the ratings into their table.

    Runs in a savepoint of the import transaction. Returns the external ids of the users who
    rated, or None (savepoint rolled back) when the file is not in the plain layout or ratings
    appeared meanwhile: the caller then takes the general path, which names any error exactly.
    """
    rating = Rating._meta.db_table
    known = {}  # external id -> pk of the release's users, created block by block
    created_before = summary.users_created
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {rating} IN ACCESS EXCLUSIVE MODE")
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {rating})")
                if cursor.fetchone()[0]:
                    return None
                # Empty already; truncated in this savepoint, it may be loaded with COPY FREEZE (rows
                # written frozen and all-visible: no hint-bit rewrite of every page on first read).
                cursor.execute(f"TRUNCATE {rating}")
            with summary.step("drop rating indexes"):
                indexes = _drop_secondary_indexes(rating, primary_key=True)
            with summary.step("check and COPY ratings"):
                count = _copy_rating_blocks(release, movie_ids, known, summary, progress)
            with summary.step("rebuild rating indexes and foreign keys"):
                _restore_secondary_indexes(rating, indexes, summary.rebuilt)
            with summary.step("analyze ratings"), connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {rating}")
    except UnusualLayout:
        summary.users_created = created_before
        return None
    except IntegrityError as error:  # the unique constraint, rebuilt: a pair rated twice
        summary.users_created = created_before
        _raise_exact_error(release)
        match = _DUPLICATE_KEY.search(str(error))
        if not match:
            raise
        user = next((ext for ext, pk in known.items() if pk == int(match[1])), match[1])
        movie = next((ml for ml, pk in movie_ids.items() if pk == int(match[2])), match[2])
        raise ReleaseError(release.ratings_file, None, f"user {user} rates movie {movie} more than once") from None
    summary.ratings_in_file = summary.ratings_written = count
    summary.ratings_path = "first load: binary COPY straight into the ratings table, indexes rebuilt after"
    return set(known)


def _raise_exact_error(release: Release) -> None:
    """Read ratings.csv with the exact reader, which raises the ReleaseError (file, line, reason)."""
    for _ in release.iter_ratings():
        pass


def _copy_rating_blocks(release: Release, movie_ids: dict[int, int], known: dict[str, int],
                        summary: ImportSummary, progress: bool) -> int:
    """Stream ratings.csv block by block into the (index-free) ratings table; returns the row count.

    One binary COPY per block, sent by a worker thread on the same connection (so the same
    transaction) while this thread parses the next block. Between two COPYs the connection is
    free, and the block's new users are created then (their pks are needed in the rows).
    """
    rating = Rating._meta.db_table
    release_movies = release.movie_ids()
    if max(release_movies, default=0) > MAX_DENSE_MOVIE_ID:  # the arrays below are indexed by movie id
        raise UnusualLayout(f"movie ids above {MAX_DENSE_MOVIE_ID:,}")
    movie_pk = np.zeros(max(release_movies, default=0) + 1, dtype=np.int64)
    for movielens_id in release_movies:
        movie_pk[movielens_id] = movie_ids[movielens_id]
    User = get_user_model()
    existing = dict(
        User.objects.filter(source=User.Source.MOVIELENS).exclude(external_id="").values_list("external_id", "pk")
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [rating])
        first_id = next_id = cursor.fetchone()[0]
    copy_sql = f"COPY {rating} ({', '.join(_COPY_COLUMNS)}) FROM STDIN (FORMAT binary, FREEZE)"
    raw_connection = connection.connection

    def copy_rows(rows: np.ndarray) -> None:
        with raw_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(_COPY_HEADER)
            copy.write(memoryview(rows).cast("B"))
            copy.write(_COPY_TRAILER)

    counts = np.zeros(len(movie_pk), dtype=np.int64)  # per MovieLens id, for the movie stats
    sums = np.zeros(len(movie_pk), dtype=np.float64)
    sending = None
    with _bar(progress, "Writing ratings (checked and COPYed block by block)") as bar, \
            ThreadPoolExecutor(max_workers=1) as sender, connection.wrap_database_errors:
        blocks = release.iter_rating_blocks()
        try:
            while True:
                with summary.step("ratings: parse and check (numpy)"):
                    block = next(blocks, None)
                if block is None:
                    break
                n = len(block.users)
                with summary.step("ratings: build COPY rows"):
                    counts += np.bincount(block.movies, minlength=len(counts))
                    sums += np.bincount(block.movies, weights=block.scores, minlength=len(sums))
                    stamps = (block.timestamps - _POSTGRES_EPOCH) * 1_000_000
                    columns = {"id": np.arange(next_id, next_id + n), "movie_id": movie_pk[block.movies],
                               "score": block.scores, "created_at": stamps, "updated_at": stamps}
                    rows = np.empty((n, _COPY_ROW_BYTES), dtype=np.uint8)
                    rows[:] = _COPY_ROW_TEMPLATE
                with summary.step("ratings: wait for PostgreSQL"):
                    if sending is not None:
                        sending.result()  # the previous block is in: the connection is free
                with summary.step("ratings: create users"):
                    columns["user_id"] = _user_pks(block.users, known, existing, summary)
                with summary.step("ratings: build COPY rows"):
                    for index, name in enumerate(_COPY_COLUMNS):
                        offset = 2 + 12 * index + 4
                        kind = ">f8" if name == "score" else ">i8"
                        rows[:, offset : offset + 8] = columns[name].astype(kind).view(np.uint8).reshape(n, 8)
                sending = sender.submit(copy_rows, rows)
                next_id += n
                bar.update(n)
        finally:
            with summary.step("ratings: wait for PostgreSQL"):
                if sending is not None:
                    sending.result()
    if next_id > first_id:  # the ids used come from the sequence (the table is locked meanwhile)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [rating, next_id - 1])
    rated = np.flatnonzero(counts)
    _write_movie_stats(movie_pk[rated], counts[rated], sums[rated] / counts[rated])
    return next_id - first_id


def _write_movie_stats(movie_pks: np.ndarray, counts: np.ndarray, means: np.ndarray) -> None:
    """Movie.rating_count/rating_mean after a first load: the figures of the rows just loaded
    (what catalog.services.refresh_movie_stats would compute, without reading them back)."""
    movie = Movie._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {movie} m SET rating_count = s.n, rating_mean = s.mean
                FROM unnest(%s::bigint[], %s::integer[], %s::double precision[]) AS s (id, n, mean)
                WHERE m.id = s.id AND (m.rating_count <> s.n OR m.rating_mean <> s.mean)""",
            [movie_pks.tolist(), counts.tolist(), means.tolist()],
        )
        cursor.execute(
            f"""UPDATE {movie} SET rating_count = 0, rating_mean = 0
                WHERE (rating_count <> 0 OR rating_mean <> 0) AND NOT (id = ANY(%s::bigint[]))""",
            [movie_pks.tolist()],
        )


def _user_pks(external_ids: np.ndarray, known: dict[str, int], existing: dict[str, int],
              summary: ImportSummary) -> np.ndarray:
    """User pks for a block of external ids, creating the users not in the catalogue yet.

    Ratings come user by user, so this works on runs of equal ids (a few hundred per block).
    """
    change = np.flatnonzero(external_ids[1:] != external_ids[:-1]) + 1
    starts = np.concatenate(([0], change))
    run_lengths = np.diff(np.concatenate((starts, [len(external_ids)])))
    distinct, run_index = np.unique(external_ids[starts], return_inverse=True)
    names = [str(value) for value in distinct.tolist()]
    new = [name for name in names if name not in known and name not in existing]
    if new:
        User = get_user_model()
        if _copy_create_users(new):
            existing.update(
                User.objects.filter(source=User.Source.MOVIELENS, external_id__in=new).values_list("external_id", "pk")
            )
        else:
            users = User.objects.bulk_create([_new_user(name, {}) for name in new], batch_size=5000)
            existing.update((user.external_id, user.pk) for user in users)
        summary.users_created += len(new)
    for name in names:
        known.setdefault(name, existing[name])
    pks = np.array([known[name] for name in names], dtype=np.int64)
    return np.repeat(pks[run_index], run_lengths)


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
    _create_movies(to_create)
    summary.movies_created, summary.movies_updated = len(to_create), len(to_update)
    return dict(Movie.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "pk"))


# Field types whose Python values PostgreSQL's COPY takes as they are (no get_db_prep_save needed).
_PLAIN_FIELD_TYPES = {"CharField", "TextField", "PositiveIntegerField", "PositiveSmallIntegerField", "IntegerField",
                      "FloatField", "DateField", "DateTimeField", "BooleanField"}


def _create_movies(movies: list[Movie]) -> None:
    """Insert new movies (see _raw_create)."""
    if not _raw_create(Movie, movies):
        Movie.objects.bulk_create(movies, batch_size=2000)


def _raw_create(model, objects: list) -> bool:
    """Insert new model instances straight from their field values and return True (their pks are
    not read back): a COPY on PostgreSQL, one executemany on SQLite. False, having written nothing,
    on other databases or when a field's Python value would need Django's conversion. Django's
    bulk_create prepares every field of every row in Python, which costs several times the insert
    itself at thousands of rows.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if (not objects or connection.vendor not in ("postgresql", "sqlite")
            or any(f.get_internal_type() not in _PLAIN_FIELD_TYPES for f in fields)):
        return False
    now = timezone.now()
    for obj in objects:
        for f in fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                setattr(obj, f.attname, now)
    table = model._meta.db_table
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if _is_postgres():
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for obj in objects:
                    copy.write_row([getattr(obj, f.attname) for f in fields])
        else:
            adapters = [_sqlite_adapter(f) for f in fields]
            rows = ([adapt(getattr(obj, f.attname)) for f, adapt in zip(fields, adapters)] for obj in objects)
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", rows)
    return True


def _sqlite_adapter(field):
    """How SQLite stores a plain field's Python value (dates and datetimes as Django writes them)."""
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if kind == "DateField":
        return connection.ops.adapt_datefield_value
    return lambda value: value


def _copy_create_users(external_ids: list[str]) -> bool:
    """_raw_create for imported users without demographics, from one template instance (the
    users differ only in username, external id and password; a model instance each costs more)."""
    User = get_user_model()
    template = _new_user("0", {})
    fields = [f for f in User._meta.concrete_fields if not f.primary_key]
    if not _is_postgres() or any(f.get_internal_type() not in _PLAIN_FIELD_TYPES for f in fields):
        return False
    row = [getattr(template, f.attname) for f in fields]
    names = [f.attname for f in fields]
    username, external_id, password = names.index("username"), names.index("external_id"), names.index("password")
    with connection.cursor() as cursor, connection.wrap_database_errors:
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {User._meta.db_table} ({columns}) FROM STDIN") as copy:
            for name in external_ids:
                row[username], row[external_id] = f"ml-{name}", name
                row[password] = UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)
                copy.write_row(row)
    return True


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
    new_links = sorted(wanted - current)
    with connection.cursor() as cursor:  # plain rows: model instances cost more than the insert itself
        if _is_postgres():  # one statement, not one per row
            cursor.execute(
                f"INSERT INTO {Link._meta.db_table} (movie_id, genre_id) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
                [[movie for movie, _ in new_links], [genre for _, genre in new_links]],
            )
        else:
            cursor.executemany(f"INSERT INTO {Link._meta.db_table} (movie_id, genre_id) VALUES (%s, %s)", new_links)


def _new_user(external_id: str, values: dict):
    """An imported MovieLens account (it cannot sign in)."""
    User = get_user_model()
    return User(
        username=f"ml-{external_id}",
        source=User.Source.MOVIELENS,
        external_id=external_id,
        # What make_password(None) stores, minus 40 secrets.choice() calls per user.
        password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
        **values,
    )


def _upsert_users(demographics: dict, external_ids: set[str], summary: ImportSummary) -> None:
    User = get_user_model()
    source = User.Source.MOVIELENS
    fields = ("gender", "birth_year", "occupation")
    if demographics:
        existing = {u.external_id: u for u in User.objects.filter(source=source).only("external_id", *fields)}
    else:  # nothing to compare: which ids exist is all that matters
        existing = dict.fromkeys(User.objects.filter(source=source).values_list("external_id", flat=True), True)
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
            to_create.append(_new_user(external_id, values))
        elif values and any(getattr(user, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(user, key, value)
            to_update.append(user)
    if demographics or not _copy_create_users([user.external_id for user in to_create]):
        if not _raw_create(User, to_create):
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
    summary.users_created += len(to_create)
    summary.users_updated += len(to_update)


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
    dropped = _drop_secondary_indexes(table)
    yield
    _restore_secondary_indexes(table, dropped)


def _drop_secondary_indexes(table: str, *, primary_key: bool = False) -> tuple[list, list]:
    """Drop the table's unique and foreign-key constraints (and its primary key if asked) and its
    other indexes; returns their definitions for _restore_secondary_indexes."""
    kinds = ("u", "f", "p") if primary_key else ("u", "f")
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = %s::regclass AND contype = ANY(%s) ORDER BY contype DESC""",
            [table, list(kinds)],
        )
        constraints = cursor.fetchall()  # unique, then primary key, then foreign keys (re-added last)
        cursor.execute(
            """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = %s::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in reversed(constraints):  # foreign keys first
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return constraints, indexes


def _restore_secondary_indexes(table: str, dropped: tuple[list, list], timings: dict | None = None) -> None:
    """Rebuild what _drop_secondary_indexes dropped (re-adding a constraint re-checks every row).

    With `timings`, records the seconds each index or constraint took under its name.
    """
    constraints, indexes = dropped
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for name, definition in indexes:
            started = time.perf_counter()
            cursor.execute(definition)
            if timings is not None:
                timings[name] = time.perf_counter() - started
        for name, definition in constraints:
            started = time.perf_counter()
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            if timings is not None:
                timings[name] = time.perf_counter() - started


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
