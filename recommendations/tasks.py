"""Celery tasks of the recommendation pipeline, and the functions that enqueue them.

Tasks take ids and call the pipeline services (recommendations.pipeline) the staff pages use.
Enqueueing always waits for the surrounding transaction to commit, and never fails a request:
when the broker is down it logs and moves on (the site serves computed lists meanwhile).
"""
import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import transaction

from recommendations import feedback, pipeline, trending
from recommendations.cache import REDIS_ERRORS, cache, mark_redis_down
from recommendations.locks import refit_running
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)

REFRESH_PENDING_KEY = "rec:refresh-pending:u{}"


@shared_task(name="recommendations.refit_model")
def refit_model(requested_at: float | None = None, reason: str = "", hyperparameters: dict | None = None) -> dict:
    """Fit, check against popularity, publish and warm (see pipeline.refit_and_publish)."""
    logger.info("Refit requested%s", f" ({reason})" if reason else "")
    return pipeline.refit_and_publish(requested_at=requested_at, hyperparameters=hyperparameters)


@shared_task(name="recommendations.maybe_refit")
def maybe_refit() -> bool:
    """Periodic check: enqueue a refit when enough new ratings arrived since the last fit."""
    if pipeline.refit_is_due() and not refit_running():
        return request_refit(reason="enough new ratings")
    return False


@shared_task(name="recommendations.warm_cache")
def warm_cache(version_id: int | None = None) -> int:
    """Re-warm the lists of the given version (default: the one being served)."""
    version_id = version_id or ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
    if version_id is None:
        return 0
    return pipeline.warm_version(version_id)


@shared_task(name="recommendations.publish_version")
def publish_version(version_id: int) -> int:
    """Serve an earlier (ready or published) version again: publish it and warm its lists."""
    return pipeline.rollback_to(ModelVersion.objects.get(pk=version_id))


@shared_task(name="recommendations.refresh_user", time_limit=120, soft_time_limit=100)
def refresh_user(user_id: int) -> bool:
    """Fold in one user's new feedback and replace their cached list."""
    cache.delete(REFRESH_PENDING_KEY.format(user_id))
    return pipeline.refresh_user_list(user_id)


@shared_task(name="recommendations.refresh_trending")
def refresh_trending() -> int:
    """Periodic: recompute the trending list pages read (recommendations.trending)."""
    return trending.refresh()


def request_refit(*, reason: str = "", hyperparameters: dict | None = None) -> bool:
    """Enqueue a refit after commit, unless one is running right now. Returns whether it was asked for."""
    try:
        if refit_running():
            logger.info("Refit not enqueued (%s): one is running", reason or "no reason given")
            return False
    except REDIS_ERRORS as error:
        mark_redis_down(error)
        return False
    _enqueue(refit_model, kwargs={"requested_at": time.time(), "reason": reason, "hyperparameters": hyperparameters})
    return True


def request_rollback(version: ModelVersion) -> None:
    _enqueue(publish_version, args=[version.pk])


def request_user_refresh(user_id: int) -> None:
    """Debounced: one refresh per user per RECOMMENDER_REFRESH_DEBOUNCE_SECONDS burst of changes.

    Called (after commit) when a user's ratings or hidden movies change. Without Redis the
    fold-in still runs in process so this process's recommendations follow.
    """
    delay = settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS
    try:
        # The flag outlives the countdown by a margin, so a lost task cannot silence a user for long.
        first_in_burst = cache.add(REFRESH_PENDING_KEY.format(user_id), 1, timeout=int(delay) + 30)
    except REDIS_ERRORS as error:
        mark_redis_down(error)
        feedback.user_feedback_changed(user_id)
        return
    if first_in_burst:
        _enqueue(refresh_user, args=[user_id], countdown=delay)


def _enqueue(task, *, args=None, kwargs=None, countdown=None) -> None:
    def send():
        try:
            task.apply_async(args=args, kwargs=kwargs, countdown=countdown)
        except REDIS_ERRORS as error:
            logger.warning("Could not enqueue %s (broker unreachable: %s)", task.name, error)

    transaction.on_commit(send)
