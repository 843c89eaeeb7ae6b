from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _repair_search_indexes(sender, using, **kwargs):
    """SQLite loses a table's triggers when a migration rebuilds it: put the search index's back."""
    from django.db import connections

    from catalog.search_indexes import SEARCHED_COLUMNS, repair_search_indexes

    connection = connections[using]
    if {table for table, _ in SEARCHED_COLUMNS} <= set(connection.introspection.table_names()):
        repair_search_indexes(connection)


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self):
        post_migrate.connect(_repair_search_indexes, sender=self)
