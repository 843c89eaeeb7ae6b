"""Search indexes on PostgreSQL (catalog.search): pg_trgm, and GIN indexes on the normalised columns.

For each of catalog_movie.search_title, catalog_director.search_name, catalog_actor.search_name:
- a GIN index on to_tsvector('simple', column): the word tiers' full-text prefix queries;
- a GIN trigram index (gin_trgm_ops): typo candidates by word similarity (`query <% column`).
Other databases get nothing here (SQLite searches with LIKE and a per-process vocabulary).
"""
from django.db import migrations

COLUMNS = [("catalog_movie", "search_title"), ("catalog_director", "search_name"), ("catalog_actor", "search_name")]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_words ON {table} USING gin (to_tsvector('simple', {column}))"
        )
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_{column}_trigrams ON {table} USING gin ({column} gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_words")
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trigrams")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_rating_without_redundant_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
