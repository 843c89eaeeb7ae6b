"""Import speed and memory, each compared with a raw bulk load of the same rows in the same run.

(a) ml-latest-small end to end on SQLite (a temporary database file): `manage.py import_movielens`
    against a plain executemany of ratings.csv into a bare table, and into a table shaped like
    catalog_rating (keys, index, check).
(b) a generated release (10M ratings by default) on PostgreSQL (database movierec_bench, recreated):
    `manage.py import_movielens` against three references measured in the same run:
    1. a plain COPY of ratings.csv into a bare 4-column table (no keys, no indexes): the floor,
       a table nothing can query by user or movie;
    2. a binary COPY of the same rows already resolved (user_id, movie_id, score, created_at,
       updated_at, exported from the import's result) into a table created
       `LIKE catalog_rating INCLUDING ALL` plus the same foreign keys: the naive bulk load;
    3. the same binary COPY into that table without indexes, then its primary key, unique
       constraint, indexes and foreign keys built: PostgreSQL's advice for bulk loads, the least
       the database must do to hold those rows with their constraints and indexes.
    The import's own per-step timings (its summary's Steps/Rebuilt lines) are printed too.

Each import runs as a child process (DATABASE_URL set for it); its peak memory is the child's
ru_maxrss. Sizes come from the environment for a quick run:
BENCH_RATINGS (10000000), BENCH_USERS (70000), BENCH_MOVIES (30000), BENCH_SMALL_PATH,
BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/movierec_bench), BENCH_SKIP_PG=1.
"""
from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", ROOT.parent / "shared" / "datasets" / "ml-latest-small"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/movierec_bench")


def run_child(args: list[str], database_url: str) -> tuple[float, float, str]:
    """Run `manage.py <args>` with DATABASE_URL set; (seconds, peak RSS in MiB, stdout). Raises on failure."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({process.returncode}):\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def import_seconds(output: str) -> float:
    """The import's own elapsed time from its summary ("Time: 12.3 s"), without interpreter/Django start-up."""
    match = re.search(r"^Time:\s+([0-9.]+) s", output, re.MULTILINE)
    return float(match[1]) if match else float("nan")


def count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def bench_sqlite_small() -> None:
    ratings = count_rows(SMALL / "ratings.csv")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite3"
        run_child(["migrate", "--noinput", "-v0"], url)
        seconds, rss, first = run_child(["import_movielens", str(SMALL), "--no-progress"], url)
        again, _, output = run_child(["import_movielens", str(SMALL), "--no-progress"], url)

        raw_path = Path(folder) / "raw.sqlite3"
        started = time.perf_counter()
        connection = sqlite3.connect(raw_path)
        connection.execute("CREATE TABLE raw_ratings (user_id integer, movie_id integer, rating real, ts integer)")
        with open(SMALL / "ratings.csv", newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            connection.executemany("INSERT INTO raw_ratings VALUES (?, ?, ?, ?)", rows)
        connection.commit()
        connection.close()
        raw = time.perf_counter() - started
        shaped = shaped_sqlite_load_seconds(Path(folder) / "shaped.sqlite3")
    print(f"[sqlite] ml-latest-small: {ratings:,} ratings (+ movies, users, tags, stats) imported in {seconds:.2f} s "
          f"= {ratings / seconds:,.0f} ratings/s, peak RSS {rss:.0f} MiB")
    inside = import_seconds(first)
    print(f"[sqlite] of which the import itself (without start-up): {inside:.2f} s = {ratings / inside:,.0f} ratings/s")
    print(f"[sqlite] re-import of the same release (no changes): {again:.2f} s")
    print(f"[sqlite] raw executemany of ratings.csv into a bare table: {raw:.2f} s = {ratings / raw:,.0f} ratings/s")
    print(f"[sqlite] ratio import / raw load: {seconds / raw:.1f}x whole process, {inside / raw:.1f}x import itself")
    print(f"[sqlite] reference 2, executemany of the same rows into a table shaped like catalog_rating (primary key, "
          f"unique (user, movie), index (movie, score), half-star check, timestamps): {shaped:.2f} s "
          f"= {ratings / shaped:,.0f} ratings/s")
    print(f"[sqlite] ratio import / reference 2: {seconds / shaped:.1f}x whole process, {inside / shaped:.1f}x import itself")


def shaped_sqlite_load_seconds(path: Path) -> float:
    """SQLite reference 2: ratings.csv into a table with catalog_rating's keys, index and check."""
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE rating (id integer PRIMARY KEY AUTOINCREMENT, user_id integer NOT NULL, movie_id integer NOT NULL, "
        "score real NOT NULL CHECK (score IN (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)), "
        "created_at datetime NOT NULL, updated_at datetime NOT NULL, UNIQUE (user_id, movie_id))")
    connection.execute("CREATE INDEX rating_movie_score ON rating (movie_id, score)")
    with open(SMALL / "ratings.csv", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        connection.executemany(
            "INSERT INTO rating (user_id, movie_id, score, created_at, updated_at) "
            "VALUES (?, ?, ?, datetime(?, 'unixepoch'), datetime(?, 'unixepoch'))",
            ((user, movie, float(score), stamp, stamp) for user, movie, score, stamp in rows))
    connection.commit()
    connection.close()
    return time.perf_counter() - started


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def bench_postgres_generated() -> None:
    import psycopg

    ratings = int(os.environ.get("BENCH_RATINGS", 10_000_000))
    users = int(os.environ.get("BENCH_USERS", min(70_000, max(ratings // 140, 10))))
    movies = int(os.environ.get("BENCH_MOVIES", min(30_000, max(ratings // 300, 50))))
    database = urlsplit(PG_URL).path.lstrip("/")
    with psycopg.connect(_admin_url(PG_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory() as folder:
        release = Path(folder) / "generated"
        gen_seconds, _, _ = run_child(
            ["generate_ratings", "--users", str(users), "--movies", str(movies), "--ratings", str(ratings),
             "--out", str(release), "--seed", "1", "--no-progress"], PG_URL,
        )
        size_mb = (release / "ratings.csv").stat().st_size / 1e6
        print(f"[postgres] generated {ratings:,} ratings by {users:,} users on {movies:,} movies "
              f"({size_mb:.0f} MB ratings.csv) in {gen_seconds:.1f} s")
        run_child(["migrate", "--noinput", "-v0"], PG_URL)

        started = time.perf_counter()
        with psycopg.connect(PG_URL) as connection:
            connection.execute("CREATE TABLE bench_raw_ratings (user_id integer, movie_id integer, rating real, ts bigint)")
            with connection.cursor() as cursor, open(release / "ratings.csv", "rb") as handle:
                with cursor.copy("COPY bench_raw_ratings FROM STDIN (FORMAT csv, HEADER true)") as copy:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        copy.write(block)
            connection.commit()
        raw = time.perf_counter() - started
        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute("DROP TABLE bench_raw_ratings")

        seconds, rss, output = run_child(["import_movielens", str(release), "--no-progress"], PG_URL)
        with psycopg.connect(PG_URL) as connection:
            stored = connection.execute("SELECT COUNT(*) FROM catalog_rating").fetchone()[0]
        dump = Path(folder) / "resolved.bin"
        export_resolved_rows(dump)
        constrained = constrained_copy_seconds(dump)
        deferred = deferred_index_copy_seconds(dump)
    print(f"[postgres] reference 1, raw COPY of ratings.csv into a bare 4-column table: {raw:.1f} s "
          f"= {ratings / raw:,.0f} ratings/s")
    print(f"[postgres] reference 2, binary COPY of the resolved rows into LIKE catalog_rating INCLUDING ALL "
          f"+ its foreign keys: {constrained:.1f} s = {ratings / constrained:,.0f} ratings/s")
    print(f"[postgres] reference 3, the same binary COPY into the table without indexes, then its primary key, "
          f"unique constraint, indexes and foreign keys built: {deferred:.1f} s = {ratings / deferred:,.0f} ratings/s")
    print(f"[postgres] import_movielens: {seconds:.1f} s = {ratings / seconds:,.0f} ratings/s, "
          f"peak RSS {rss:.0f} MiB, {stored:,} ratings stored")
    inside = import_seconds(output)
    print(f"[postgres] of which the import itself (without start-up): {inside:.1f} s")
    for line in output.splitlines():
        if line.startswith(("Ratings path:", "Steps:", "Rebuilt:")):
            print(f"[postgres]   {line}")
    print(f"[postgres] ratio import / reference 1 (bare COPY): {seconds / raw:.2f}x whole process, "
          f"{inside / raw:.2f}x import itself (goal: within 2x)")
    print(f"[postgres] ratio import / reference 2 (COPY with the constraints and indexes): "
          f"{seconds / constrained:.2f}x whole process, {inside / constrained:.2f}x import itself")
    print(f"[postgres] ratio import / reference 3 (COPY, then indexes and constraints built): "
          f"{seconds / deferred:.2f}x whole process, {inside / deferred:.2f}x import itself")


RESOLVED_COLUMNS = "user_id, movie_id, score, created_at, updated_at"


def export_resolved_rows(dump: Path) -> None:
    """Write the imported ratings (resolved ids) to a binary COPY file, untimed, for references 2 and 3."""
    import psycopg

    with psycopg.connect(PG_URL) as connection:
        with connection.cursor() as cursor, open(dump, "wb") as handle:
            export = f"COPY (SELECT {RESOLVED_COLUMNS} FROM catalog_rating ORDER BY id) TO STDOUT (FORMAT binary)"
            with cursor.copy(export) as copy:
                for block in copy:
                    handle.write(block)


def _copy_dump(connection, table: str, dump: Path) -> None:
    with connection.cursor() as cursor, open(dump, "rb") as handle:
        with cursor.copy(f"COPY {table} ({RESOLVED_COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
            for block in iter(lambda: handle.read(1 << 20), b""):
                copy.write(block)


def _rating_constraints(connection, kinds: str) -> list[str]:
    """Definitions of catalog_rating's constraints of the given kinds (p, u, f), in that order."""
    rows = connection.execute(
        "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'catalog_rating'::regclass "
        "AND contype = ANY(%s)", [list(kinds)]).fetchall()
    return [definition for kind in kinds for contype, definition in rows if contype == kind]


def constrained_copy_seconds(dump: Path) -> float:
    """Reference 2: a binary COPY of the resolved rows into a copy of catalog_rating with all its
    indexes, constraints and foreign keys in place."""
    import psycopg

    with psycopg.connect(PG_URL) as connection:
        foreign_keys = _rating_constraints(connection, "f")
    started = time.perf_counter()
    with psycopg.connect(PG_URL) as connection:
        connection.execute("CREATE TABLE bench_constrained_ratings (LIKE catalog_rating INCLUDING ALL)")
        for definition in foreign_keys:
            connection.execute(f"ALTER TABLE bench_constrained_ratings ADD {definition}")
        _copy_dump(connection, "bench_constrained_ratings", dump)
        connection.commit()
    seconds = time.perf_counter() - started
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute("DROP TABLE bench_constrained_ratings")
    return seconds


def deferred_index_copy_seconds(dump: Path) -> float:
    """Reference 3, PostgreSQL's own advice for a bulk load: a binary COPY of the resolved rows into a
    copy of catalog_rating without indexes, then its primary key, unique constraint, indexes and
    foreign keys built afterwards (with the maintenance_work_mem the import uses)."""
    import psycopg

    with psycopg.connect(PG_URL) as connection:
        constraints = _rating_constraints(connection, "puf")
        indexes = [row[0] for row in connection.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = 'catalog_rating'::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)").fetchall()]
    started = time.perf_counter()
    with psycopg.connect(PG_URL) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        connection.execute("CREATE TABLE bench_deferred_ratings (LIKE catalog_rating INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)")
        _copy_dump(connection, "bench_deferred_ratings", dump)
        for definition in indexes:
            connection.execute(re.sub(r"INDEX (\S+) ON \S+", r"INDEX bench_\1 ON bench_deferred_ratings", definition))
        for definition in constraints:
            connection.execute(f"ALTER TABLE bench_deferred_ratings ADD {definition}")
        connection.commit()
    seconds = time.perf_counter() - started
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute("DROP TABLE bench_deferred_ratings")
    return seconds


def main() -> None:
    if SMALL.is_dir():
        bench_sqlite_small()
    else:
        print(f"[sqlite] skipped: no ml-latest-small at {SMALL} (set BENCH_SMALL_PATH)")
    if os.environ.get("BENCH_SKIP_PG") == "1":
        print("[postgres] skipped (BENCH_SKIP_PG=1)")
    else:
        bench_postgres_generated()


if __name__ == "__main__":
    main()
