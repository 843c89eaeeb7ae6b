"""Search indexes (catalog.search_indexes): pg_trgm and GIN indexes on PostgreSQL, FTS5 on SQLite."""
from django.db import migrations


def create(apps, schema_editor):
    from catalog.search_indexes import ensure_search_indexes

    ensure_search_indexes(schema_editor.connection)


def drop(apps, schema_editor):
    from catalog.search_indexes import drop_search_indexes

    drop_search_indexes(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_rating_without_redundant_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
