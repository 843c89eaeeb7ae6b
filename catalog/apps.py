from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


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
        from catalog.models import Actor, CastMember, Director, Movie
        from catalog.search import forget_kept_searches

        for model in (Movie, Director, Actor, CastMember):
            post_save.connect(forget_kept_searches, sender=model, dispatch_uid=f"search-stamp-save-{model.__name__}")
            post_delete.connect(forget_kept_searches, sender=model, dispatch_uid=f"search-stamp-delete-{model.__name__}")
        m2m_changed.connect(forget_kept_searches, sender=Movie.directors.through, dispatch_uid="search-stamp-directors")
