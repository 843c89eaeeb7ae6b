"""The pipeline through a real Celery worker process on Redis db 14 and the test database."""
import re
import time

import pytest

from catalog.models import Movie
from catalog.services import rate_movie
from recommendations import cache, pipeline
from recommendations.locks import refit_running
from recommendations.models import ModelVersion
from recommendations.tasks import maybe_refit, request_refit
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

# Fits the holdout model for minutes: long enough to be killed mid-refit.
ENDLESS_FIT = {"epochs": 1_000_000, "components": 8}


def wait_for(condition, *, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def finished_refits(*workers) -> int:
    return sum(len(re.findall(r"recommendations\.refit_model\[[^\]]+\] succeeded", w.log())) for w in workers)


def test_a_refit_through_the_worker_publishes_and_warms_the_cache(celery_worker):
    groups = make_taste_catalogue()
    users = [user for members in groups.values() for user in members]

    assert request_refit(reason="test", hyperparameters=FAST_FIT)

    wait_for(lambda: finished_refits(celery_worker),
             timeout=120, message=f"published version\n{celery_worker.log()[-2000:]}")
    version = ModelVersion.objects.get(is_current=True)
    assert cache.current_version_pointer() == str(version.pk)
    assert cache.cache_status()["keys"] == len(users)
    assert [r.movie.genres.get().name for r in cache.get_recommendations(groups["Horror"][0], n=5)] == ["Horror"] * 5


def test_two_refits_requested_together_fit_once(start_worker):
    make_taste_catalogue(users_per_genre=6)
    # Both requests are queued before any worker runs, so neither sees the other's refit running
    # (on a loaded machine a worker started first could take the first task before the second is asked).
    assert request_refit(reason="first", hyperparameters=FAST_FIT)
    assert request_refit(reason="second", hyperparameters=FAST_FIT)
    workers = [start_worker(), start_worker()]

    wait_for(lambda: finished_refits(*workers) == 2, timeout=120,
             message="both refit tasks finished\n" + "\n".join(w.log()[-1500:] for w in workers))
    assert ModelVersion.objects.count() == 1
    assert ModelVersion.objects.get().is_current
    assert "'outcome': 'skipped'" in "".join(w.log() for w in workers)


def test_a_worker_killed_mid_refit_leaves_the_previous_version_serving_and_the_periodic_check_refits_again(start_worker):
    groups = make_taste_catalogue(users_per_genre=6)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    previous = ModelVersion.objects.get(is_current=True)
    lock_ttl = 3
    doomed = start_worker(env={"RECOMMENDER_REFIT_LOCK_TTL": str(lock_ttl)})

    request_refit(reason="will be killed", hyperparameters=ENDLESS_FIT)
    wait_for(lambda: ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).exists() and refit_running(),
             timeout=60, message=f"refit started\n{doomed.log()[-2000:]}")
    time.sleep(lock_ttl)  # past one TTL: the heartbeat has been extending the lock
    assert refit_running()
    doomed.kill()

    assert ModelVersion.objects.get(is_current=True) == previous
    assert cache.current_version_pointer() == str(previous.pk)
    assert cache.get_recommendations(groups["Western"][0], n=5)
    wait_for(lambda: not refit_running(), timeout=lock_ttl + 5, message="the dead worker's lock expired")

    survivor = start_worker()
    assert maybe_refit(), "the periodic check notices the abandoned refit and asks for a new one"
    wait_for(lambda: finished_refits(survivor), timeout=120, message=f"next refit finished\n{survivor.log()[-2000:]}")
    assert ModelVersion.objects.get(is_current=True) != previous
    orphan = ModelVersion.objects.get(hyperparameters__epochs=ENDLESS_FIT["epochs"])
    assert orphan.status == ModelVersion.Status.FAILED and orphan.error == pipeline.ORPHAN_ERROR
    assert cache.current_version_pointer() == str(ModelVersion.objects.get(is_current=True).pk)


def test_a_rating_replaces_that_users_cached_list_within_seconds(celery_worker):
    groups = make_taste_catalogue()
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Musical"][0]
    version = cache.current_version_pointer()
    before = [r.movie.pk for r in cache.get_recommendations(user, n=60)]
    top = Movie.objects.get(pk=before[0])

    started = time.monotonic()
    rate_movie(user=user, movie=top, score=5.0)

    def refreshed_list():
        payload = cache.cache.get(cache.list_key(version, user.pk)) or []
        ids = [item["movie_id"] for item in payload]
        return ids if ids and top.pk not in ids else None

    after = wait_for(refreshed_list, timeout=15, message=f"list refreshed\n{celery_worker.log()[-2000:]}")
    assert time.monotonic() - started < 15
    assert after != before and top.pk not in after
    assert [r.movie.pk for r in cache.get_recommendations(user, n=60)] == after
