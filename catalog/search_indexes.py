"""The database's own search indexes over the normalised columns (used by catalog.search).

PostgreSQL: pg_trgm, and per column a GIN full-text index on to_tsvector('simple', column) and a
GIN trigram index. Their pending list of recent inserts is kept at 256 kB instead of 4 MB: every
query scans it whole until it is merged (60 ms instead of 0.2 ms for a name right after 200,000
people were added with the default), while a bulk import still merges in batches (30,000 people
inserted in 4.5-5.4 s against 9.6 s with no pending list). Plus a B-tree (text_pattern_ops) on
catalog_movie.search_title for queries such as "the".

SQLite: per column an FTS5 table over the model's table (external content, kept in step by
triggers) and an fts5vocab table listing its distinct words; a B-tree on catalog_movie.search_title. Django's SQLite schema editor
rebuilds a table to alter it, which drops its triggers, so ensure_search_indexes also runs after
every migrate (catalog.apps: repair_search_indexes) and rebuilds an index whose triggers were missing.
"""
from __future__ import annotations

PENDING_LIST_KB = 256
SEARCHED_COLUMNS = [("catalog_movie", "search_title"), ("catalog_director", "search_name"), ("catalog_actor", "search_name")]


def fts_table(table: str) -> str:
    """The SQLite FTS5 table over a searched table."""
    return f"{table}_search"


def vocabulary_table(table: str) -> str:
    """The SQLite fts5vocab table listing the distinct words of a searched table."""
    return f"{table}_search_words"


def _postgresql(cursor) -> None:
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in SEARCHED_COLUMNS:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_words ON {table} "
            f"USING gin (to_tsvector('simple', {column})) WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_trigrams ON {table} "
            f"USING gin ({column} gin_trgm_ops) WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
        )
    cursor.execute(
        "CREATE INDEX IF NOT EXISTS catalog_movie_search_title_lines ON catalog_movie (search_title text_pattern_ops)"
    )


def _sqlite_triggers(table: str, column: str) -> dict[str, str]:
    fts = fts_table(table)
    remove = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"
    add = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"
    return {
        f"{fts}_insert": f"AFTER INSERT ON {table} BEGIN {add} END",
        f"{fts}_delete": f"AFTER DELETE ON {table} BEGIN {remove} END",
        f"{fts}_update": f"AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END",
    }


def _sqlite(cursor, *, repair_only: bool = False) -> None:
    if repair_only:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [fts_table("catalog_movie")])
        if cursor.fetchone() is None:
            return  # not created yet, or migrated back before it
    cursor.execute("CREATE INDEX IF NOT EXISTS catalog_movie_search_title_lines ON catalog_movie (search_title)")
    for table, column in SEARCHED_COLUMNS:
        fts = fts_table(table)
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content='{table}', "
            f"content_rowid='id', prefix='2 3')"
        )
        cursor.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocabulary_table(table)} USING fts5vocab({fts}, 'row')")
        triggers = _sqlite_triggers(table, column)
        cursor.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN ({', '.join(['%s'] * len(triggers))})",
            list(triggers),
        )
        present = {name for (name,) in cursor.fetchall()}
        if present != set(triggers):
            for name, body in triggers.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"CREATE TRIGGER {name} {body}")
            cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def ensure_search_indexes(connection) -> None:
    """Create the search indexes of this database if missing (idempotent; nothing for other vendors)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _postgresql(cursor)
        elif connection.vendor == "sqlite":
            _sqlite(cursor)


def repair_search_indexes(connection) -> None:
    """SQLite: put back the triggers and index a table rebuild dropped, if the search index exists."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            _sqlite(cursor, repair_only=True)


def drop_search_indexes(connection) -> None:
    with connection.cursor() as cursor:
        for table, column in SEARCHED_COLUMNS:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP INDEX IF EXISTS {table}_{column}_words")
                cursor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trigrams")
            elif connection.vendor == "sqlite":
                for name in _sqlite_triggers(table, column):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"DROP TABLE IF EXISTS {vocabulary_table(table)}")
                cursor.execute(f"DROP TABLE IF EXISTS {fts_table(table)}")
        cursor.execute("DROP INDEX IF EXISTS catalog_movie_search_title_lines")
