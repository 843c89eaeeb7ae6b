"""The serving pipeline around the engine: refit under a lock, check, publish, warm, refresh.

These are the service functions the Celery tasks (recommendations.tasks) and the staff model
page call. The recommending itself is recommendations.services / selectors / feedback.
"""
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from catalog.models import Rating
from movierec.cache_backends import REDIS_ERRORS, redis_guard
from recommendations import cache, engine, experiments, feedback, selectors, services, shared_work, warming
from recommendations.locks import refit_lock, refit_running
from recommendations.models import ModelVersion

logger = logging.getLogger(__name__)

WARM_BATCH = 200
WARM_HELPER_GRACE_SECONDS = 30.0
ORPHAN_ERROR = "The worker stopped during training (killed, restarted or over its time limit)."


def holdout_scores(version: ModelVersion) -> tuple[float | None, float | None]:
    """(served model nDCG@10, popularity nDCG@10) of the version's quick holdout check."""
    metrics = version.metrics or {}
    return metrics.get("holdout_served_ndcg@10"), metrics.get("holdout_popularity_ndcg@10")


def refit_and_publish(*, requested_at: float | None = None, hyperparameters: dict | None = None,
                      progress: bool = False, with_workers: bool = False) -> dict:
    """Fit a new version and publish it if its holdout nDCG@10 is not worse than popularity's.

    (With too few ratings for a holdout, the first version is published: it can only beat
    serving nothing; later unchecked versions are rejected.)

    One refit at a time: returns {"outcome": "skipped"} at once when another worker holds the
    lock, or when a fit started after ``requested_at`` (a Unix time) already covers this request.
    A rejected or failed fit is recorded on its version and the previous version keeps serving.
    """
    with refit_lock() as held:
        if not held:
            return {"outcome": "skipped", "reason": "another refit is running"}
        if requested_at is not None:
            since = datetime.fromtimestamp(requested_at, tz=dt_timezone.utc)
            covered = ModelVersion.objects.filter(created_at__gte=since).exclude(status=ModelVersion.Status.FAILED)
            if covered.exists():
                return {"outcome": "skipped", "reason": f"v{covered.order_by('created_at')[0].pk} already covers it"}
        # Under the lock no other fit runs, so anything still "training" was left by a dead worker.
        ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED, error=ORPHAN_ERROR
        )
        serving = ModelVersion.objects.filter(is_current=True).first()
        started = timezone.now()
        try:
            version = services.fit_model(hyperparameters=hyperparameters, progress=progress)
        except Exception as error:
            logger.exception("Refit failed")
            ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING, created_at__gte=started).update(
                status=ModelVersion.Status.FAILED, error=f"{type(error).__name__}: {error}"
            )
            return {"outcome": "failed", "error": str(error)}

        model_ndcg, popularity_ndcg = holdout_scores(version)
        unchecked = model_ndcg is None or popularity_ndcg is None
        # Too few ratings for a holdout: nothing to protect when no model serves yet, so publish.
        if (unchecked and serving is not None) or (not unchecked and model_ndcg < popularity_ndcg):
            keeps = f"v{serving.pk} keeps serving" if serving else "popularity keeps serving"
            version.status = ModelVersion.Status.REJECTED
            version.error = (
                f"Holdout nDCG@10 {_fmt(model_ndcg)} is worse than popularity's {_fmt(popularity_ndcg)}; {keeps}."
            )
            version.save(update_fields=["status", "error"])
            logger.warning("Model v%s rejected: %s", version.pk, version.error)
            return {"outcome": "rejected", "version": version.pk, "error": version.error}

        warmed = publish_and_warm(version, progress=progress, with_workers=with_workers)
        return {"outcome": "published", "version": version.pk, "warmed": warmed}


def _fmt(value) -> str:
    return "missing" if value is None else f"{value:.4f}"


def publish_and_warm(version: ModelVersion, *, user_ids=None, progress: bool = False, with_workers: bool = False) -> int:
    """Make version the served one: warm every active user's list under its keys, then switch.

    The database publish happens first so the lists are computed with the new model; readers
    keep following the Redis pointer (the previous version's complete lists) until the final
    single SET. Returns the number of lists written.
    """
    steps = engine.StepLog()
    with steps.step("publish"):
        services.publish_model(version)
        # The lists must come from the new model now, not after the selectors' periodic re-check.
        selectors.expire_current_model()
    with steps.step("warm"):
        written = warm_version(version.pk, user_ids=user_ids, progress=progress, with_workers=with_workers)
    metrics = dict(version.metrics or {})
    metrics["steps"] = list(metrics.get("steps", [])) + steps.entries
    metrics["warmed_lists"] = written
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics)
    return written


def warm_version(version_id, *, user_ids=None, progress: bool = False, with_workers: bool = False) -> int:
    """Write top-N lists for the users (default: the active ones) under version_id, then point readers at it.

    When version_id is the served model the lists are computed WARM_BATCH users at a time
    (recommendations.warming: matrix products over the chunk). ``with_workers`` (a Celery task
    warming): the chunks are posted to Redis and RECOMMENDER_WARM_HELPERS ``warm_chunks`` tasks
    are sent, so idle worker processes, here or on other machines, warm beside this one
    (recommendations.shared_work). Otherwise in RECOMMENDER_WARM_PROCESSES forked processes when
    there are enough users to share out (not inside a daemonic process, such as a Celery prefork
    worker's child, which may not have children: it warms in its own process). A version that
    is not the served one is warmed user by user.
    """
    started = time.perf_counter()
    ids = list(active_user_ids() if user_ids is None else user_ids)
    chunks = [ids[offset:offset + WARM_BATCH] for offset in range(0, len(ids), WARM_BATCH)]
    model = selectors.current_model()
    batched = model is not None and model.version_id == int(version_id)
    processes = min(settings.RECOMMENDER_WARM_PROCESSES, len(chunks) // 2) if batched else 1
    if multiprocessing.current_process().daemon:
        processes = 1
    bar = tqdm(total=len(chunks), desc=f"warm v{version_id}", unit="batch", disable=not progress)
    written = 0
    board = _post_warm_board(version_id, chunks) if batched and with_workers and len(chunks) > 1 else None
    if board is not None:
        written = _warm_from_board(version_id, board, bar)
    elif processes > 1:
        # The children inherit the model (copy-on-write) but must open their own database connections.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            for count in pool.map(_warm_chunk, [(version_id, chunk) for chunk in chunks]):
                written += count
                bar.update()
    else:
        for chunk in chunks:
            written += _warm_chunk((version_id, chunk), batched=batched)
            bar.update()
    bar.close()
    cache.switch_pointer(version_id)
    cache.record_warm(version_id, written, time.perf_counter() - started)
    logger.info("Warmed %d lists for v%s and switched readers to it", written, version_id)
    return written


def _post_warm_board(version_id, chunks: list[list[int]]) -> shared_work.Board | None:
    """Post the chunks and ask RECOMMENDER_WARM_HELPERS worker processes to help; None without
    Redis or with tasks run in process (no other worker to help), or when Redis fails (this
    process then warms alone)."""
    from celery import current_app

    if cache.redis_client() is None or settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    try:
        with redis_guard():
            board = shared_work.Board.post(f"warm:v{version_id}", chunks)
    except REDIS_ERRORS:
        return None
    for _ in range(settings.RECOMMENDER_WARM_HELPERS):
        try:
            current_app.send_task("recommendations.warm_chunks", args=[int(version_id), board.name])
        except REDIS_ERRORS as error:  # the broker is down: the chunks stay on the board for this process
            logger.warning("Could not send a warm_chunks task (%s); warming v%s alone", error, version_id)
            break
    return board


def _warm_from_board(version_id, board: shared_work.Board, bar) -> int:
    """Warm chunks from the board until it is empty, then wait for those helpers claimed (doing
    any a dead helper left); returns the lists written by everyone."""
    slowest = 0.0
    for index, chunk in board.claims():
        began = time.perf_counter()
        board.finish(index, _warm_chunk((version_id, chunk)))
        slowest = max(slowest, time.perf_counter() - began)
        bar.update()
    # A helper holds at most one chunk at a time: give it a few times the slowest chunk seen here.
    return board.complete(lambda chunk: _warm_chunk((version_id, chunk)),
                          wait_seconds=max(WARM_HELPER_GRACE_SECONDS, 5 * slowest))


def warm_chunks_from_board(version_id: int, board_name: str) -> int:
    """A helper's side of a shared warm: warm chunks from the board while the version is the
    served one; returns how many lists it wrote."""
    selectors.expire_current_model()  # the publish happened in another process
    model = selectors.current_model()
    if model is None or model.version_id != int(version_id):
        return 0
    board, written = shared_work.Board(board_name), 0
    for index, chunk in board.claims():
        count = _warm_chunk((version_id, chunk))
        board.finish(index, count)
        written += count
    return written


def _warm_chunk(job, *, batched: bool = True) -> int:
    """Compute and store the lists of one chunk of users; returns how many were written."""
    version_id, user_ids = job
    n = settings.RECOMMENDER_CACHE_TOP_N
    model = selectors.current_model()
    with experiments.outside_experiments():  # these keys hold the published version's lists
        if batched and model is not None and model.version_id == int(version_id):
            lists = warming.recommend_for_users(model, user_ids, n=n)
        else:
            users = get_user_model().objects.filter(pk__in=user_ids)
            lists = {user.pk: selectors.recommend_for_user(user, n=n) for user in users}
    cache.store_many(str(version_id), lists)
    return len(lists)


def active_user_ids() -> list[int]:
    """Users worth a pre-computed list: site accounts that logged in or rated recently.

    Imported MovieLens users and simulated demo users never sign in, so no list is kept for them.
    """
    since = timezone.now() - timedelta(days=settings.RECOMMENDER_ACTIVE_USER_DAYS)
    User = get_user_model()
    return list(
        User.objects.filter(is_active=True, source=User.Source.SITE)
        .filter(Q(last_login__gte=since) | Q(ratings__updated_at__gte=since))
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")
    )


def rollback_to(version: ModelVersion, *, progress: bool = False, with_workers: bool = False) -> int:
    """Serve an earlier fit again (it must be READY or PUBLISHED, with its artifact)."""
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.PUBLISHED):
        raise ValueError(f"v{version.pk} is {version.get_status_display()}: only a ready or published fit can serve.")
    return publish_and_warm(version, progress=progress, with_workers=with_workers)


def refresh_user_list(user_id: int) -> bool:
    """Fold the user's new feedback in and replace their cached list; False if the user is gone."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return False
    feedback.user_feedback_changed(user_id)
    recommendations = selectors.recommend_for_user(user, n=settings.RECOMMENDER_CACHE_TOP_N)
    cache.store_recommendations(cache.user_list_version(user), user_id, recommendations)
    return True


def new_ratings_since_last_fit() -> int | None:
    """Ratings created or changed since the newest fit started (None when there never was a fit).

    Failed fits count too, so a fit that fails is retried on new data or at night, not in a loop.
    """
    last = ModelVersion.objects.order_by("-created_at").first()
    if last is None:
        return None
    return Rating.objects.filter(updated_at__gt=last.created_at).count()


def refit_abandoned() -> bool:
    """A version is still "training" although no worker holds the refit lock: its worker died
    (the lock is held for the whole of a refit and expires soon after its worker stops)."""
    return ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).exists() and not refit_running()


def refit_is_due() -> bool:
    """A first fit when there is data and no model, else once enough new ratings arrived."""
    new = new_ratings_since_last_fit()
    if new is None:
        return Rating.objects.exists()
    return new >= settings.RECOMMENDER_REFIT_MIN_NEW_RATINGS
