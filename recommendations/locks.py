"""The refit lock: one fit at a time across every worker on every machine.

A redis-py Lock with a short TTL that a heartbeat thread keeps extending while the fit runs.
If the worker dies (even SIGKILL) the heartbeat stops with it and the lock expires within
RECOMMENDER_REFIT_LOCK_TTL seconds, so a dead worker never blocks refits for long.
Without Redis (in-process mode) a process-local lock does the same job.
"""
import threading
from contextlib import contextmanager

from django.conf import settings

from movierec.cache_backends import redis_guard
from recommendations.cache import cache, redis_client

REFIT_LOCK_KEY = "rec:lock:refit"
_local_refit_lock = threading.Lock()


def _lock_name() -> str:
    return cache.make_key(REFIT_LOCK_KEY)


@contextmanager
def refit_lock():
    """Yield True holding the refit lock, or False at once if another refit holds it."""
    client = redis_client()
    if client is None:
        acquired = _local_refit_lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                _local_refit_lock.release()
        return

    ttl = settings.RECOMMENDER_REFIT_LOCK_TTL
    lock = client.lock(_lock_name(), timeout=ttl, blocking=False, thread_local=False)
    with redis_guard():
        acquired = lock.acquire()
    if not acquired:
        yield False
        return
    stop = threading.Event()
    heartbeat = threading.Thread(target=_keep_alive, args=(lock, stop, ttl / 3), daemon=True, name="refit-lock")
    heartbeat.start()
    try:
        yield True
    finally:
        stop.set()
        heartbeat.join()
        try:
            lock.release()
        except Exception:  # already expired (e.g. Redis restarted): nothing left to release
            pass


def _keep_alive(lock, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            lock.reacquire()
        except Exception:  # Redis blip: try again next beat; the TTL bounds the damage
            continue


def refit_running() -> bool:
    """Whether some worker currently holds the refit lock."""
    client = redis_client()
    if client is None:
        return _local_refit_lock.locked()
    with redis_guard():
        return bool(client.exists(_lock_name()))
