"""Celery tasks of the recommendation pipeline, and the functions that enqueue them.

Tasks take ids and call the pipeline services (recommendations.pipeline) the staff pages use.
Enqueueing always waits for the surrounding transaction to commit, and never fails a request:
when the broker is down it logs and moves on (the site serves computed lists meanwhile).
"""
import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from movierec.cache_backends import REDIS_ERRORS, breaker
from recommendations import feedback, pipeline, trending
from recommendations.locks import refit_running
from recommendations.models import ModelVersion, PendingRefresh

logger = logging.getLogger(__name__)



@shared_task(name="recommendations.refit_model")
def refit_model(requested_at: float | None = None, reason: str = "", hyperparameters: dict | None = None) -> dict:
    """Fit, check against popularity, publish and warm (see pipeline.refit_and_publish)."""
    logger.info("Refit requested%s", f" ({reason})" if reason else "")
    return pipeline.refit_and_publish(requested_at=requested_at, hyperparameters=hyperparameters, with_workers=True)


@shared_task(name="recommendations.maybe_refit")
def maybe_refit() -> bool:
    """Periodic check: refit when enough new ratings arrived, or when the last refit's worker died."""
    if refit_running():
        return False
    if pipeline.refit_abandoned():
        return request_refit(reason="the previous refit's worker stopped before it finished")
    if pipeline.refit_is_due():
        return request_refit(reason="enough new ratings")
    return False


@shared_task(name="recommendations.warm_cache")
def warm_cache(version_id: int | None = None) -> int:
    """Re-warm the lists of the given version (default: the one being served)."""
    version_id = version_id or ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True).first()
    if version_id is None:
        return 0
    return pipeline.warm_version(version_id, with_workers=True)


@shared_task(name="recommendations.warm_chunks")
def warm_chunks(version_id: int, board: str) -> int:
    """Help warm a version's lists: chunks of users from a shared board (pipeline.warm_version)."""
    return pipeline.warm_chunks_from_board(version_id, board)


@shared_task(name="recommendations.publish_version")
def publish_version(version_id: int) -> int:
    """Serve an earlier (ready or published) version again: publish it and warm its lists."""
    return pipeline.rollback_to(ModelVersion.objects.get(pk=version_id), with_workers=True)


@shared_task(name="recommendations.refresh_user", time_limit=120, soft_time_limit=100)
def refresh_user(user_id: int) -> bool:
    """Fold in one user's new feedback and replace their cached list.

    Clears the user's pending refresh only if no newer change arrived meanwhile; if one did,
    another refresh is sent for it.
    """
    started = timezone.now()
    refreshed = pipeline.refresh_user_list(user_id)
    if not PendingRefresh.objects.filter(user_id=user_id, changed_at__lte=started).delete()[0]:
        if PendingRefresh.objects.filter(user_id=user_id).exists():
            _send_refresh(user_id)
    return refreshed


@shared_task(name="recommendations.resend_lost_refreshes")
def resend_lost_refreshes() -> int:
    """Periodic sweep: send again the refreshes lost during a Redis outage (or never sent)."""
    lost_before = timezone.now() - timedelta(
        seconds=settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS + settings.RECOMMENDER_REFRESH_LOST_SECONDS
    )
    user_ids = list(
        PendingRefresh.objects.filter(Q(sent_at__isnull=True) | Q(sent_at__lt=lost_before)).values_list("user_id", flat=True)
    )
    for user_id in user_ids:
        _send_refresh(user_id, countdown=0)
    if user_ids:
        logger.info("Re-sent %d lost recommendation refreshes", len(user_ids))
    return len(user_ids)


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
    except REDIS_ERRORS:
        return False
    _enqueue(refit_model, kwargs={"requested_at": time.time(), "reason": reason, "hyperparameters": hyperparameters})
    return True


def request_rollback(version: ModelVersion) -> None:
    _enqueue(publish_version, args=[version.pk])


def request_user_refresh(user_id: int) -> None:
    """Debounced: one refresh per user per RECOMMENDER_REFRESH_DEBOUNCE_SECONDS burst of changes.

    Called (after commit) when a user's ratings or hidden movies change. The change is recorded
    in the database first (PendingRefresh), so a refresh that cannot be sent now is sent later
    by the sweep. While Redis is unreachable the fold-in runs in process so this process's
    recommendations follow at once.
    """
    now = timezone.now()
    if PendingRefresh.objects.filter(user_id=user_id).update(changed_at=now):
        return  # a refresh is already on its way for this burst; it (or the sweep) picks this up
    try:
        PendingRefresh.objects.create(user_id=user_id, changed_at=now)
    except IntegrityError:
        return  # a concurrent request created it and sends the refresh
    if breaker.is_open:
        feedback.user_feedback_changed(user_id)
        return
    _send_refresh(user_id)


def _send_refresh(user_id: int, *, countdown: float | None = None) -> None:
    delay = settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS if countdown is None else countdown

    def mark_sent():
        PendingRefresh.objects.filter(user_id=user_id).update(sent_at=timezone.now())

    _enqueue(refresh_user, args=[user_id], countdown=delay, on_sent=mark_sent)


def _enqueue(task, *, args=None, kwargs=None, countdown=None, on_sent=None) -> None:
    """Send the task once the surrounding transaction commits; never fails the caller.

    Not sent while the Redis circuit breaker is open (movierec.cache_backends): the caller
    must not wait on a Redis that just failed.
    """

    def send():
        if breaker.is_open:
            logger.warning("Not enqueueing %s: Redis is unreachable", task.name)
            return
        try:
            task.apply_async(args=args, kwargs=kwargs, countdown=countdown)
        except REDIS_ERRORS as error:
            breaker.trip(error)
            logger.warning("Could not enqueue %s (broker unreachable: %s)", task.name, error)
            return
        if on_sent is not None:
            on_sent()

    transaction.on_commit(send)


@shared_task(name="recommendations.flush_impressions", time_limit=300, soft_time_limit=270)
def flush_impressions() -> int:
    """Periodic: move the impressions and outcomes buffered in Redis into the database."""
    from recommendations import impressions

    return impressions.flush()


@shared_task(name="recommendations.prune_impressions")
def prune_impressions() -> int:
    """Periodic (daily): aggregate and delete impressions older than IMPRESSIONS_RETENTION_DAYS."""
    from recommendations import impressions

    return impressions.aggregate_and_prune()
