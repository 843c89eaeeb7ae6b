"""Celery tasks of the catalogue app (autodiscovered by movierec.celery)."""
from catalog.history_import import apply_history_import_task

__all__ = ["apply_history_import_task"]
