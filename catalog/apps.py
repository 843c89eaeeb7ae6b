from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _restore_search_indexes(sender, using, **kwargs):
    """SQLite loses a table's triggers when a migration rebuilds it: put the search index's back."""
    from django.db import connections

    from catalog.search_indexes import SEARCHED_COLUMNS, ensure_search_indexes

    connection = connections[using]
    tables = {table for table, _ in SEARCHED_COLUMNS}
    if connection.vendor == "sqlite" and tables <= set(connection.introspection.table_names()):
        ensure_search_indexes(connection)


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self):
        post_migrate.connect(_restore_search_indexes, sender=self)
