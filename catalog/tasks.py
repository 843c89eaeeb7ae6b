"""Celery tasks of the catalogue app (autodiscovered by movierec.celery)."""
import logging

from celery import shared_task

from catalog import posters
from catalog.history_import import apply_history_import_task

__all__ = ["apply_history_import_task", "fetch_posters_task"]
logger = logging.getLogger(__name__)


@shared_task(name="catalog.fetch_posters")
def fetch_posters_task(movie_ids: list[int] | None = None, force: bool = False, retry_missing: bool = False) -> dict:
    """Fetch and store TMDB posters (catalog.posters.fetch_posters; a progress bar in the worker's log)."""
    run = posters.fetch_posters(movie_ids, force=force, retry_missing=retry_missing)
    logger.info("%s", run.summary())
    return run.as_dict()
