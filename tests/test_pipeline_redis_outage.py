"""Redis fails mid-test (a redis-server of the test's own): killed, restarted, hung. The site keeps
answering, a hung Redis costs one short timeout, the worker survives, lost refreshes come back."""
import re
import time

import pytest

from catalog.models import Movie
from catalog.services import hide_movie, rate_movie
from movierec.cache_backends import breaker
from recommendations import cache, pipeline
from recommendations.models import PendingRefresh
from recommendations.tasks import resend_lost_refreshes
from tests.factories import DEFAULT_PASSWORD
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def wait_for(condition, *, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def cached_ids(user) -> list[int] | None:
    payload = cache.cache.get(cache.list_key(cache.current_version_pointer(), user.pk))
    return None if payload is None else [item["movie_id"] for item in payload]


def api_ids(client) -> list[int]:
    response = client.get("/api/v1/recommendations/?n=10")
    assert response.status_code == 200
    return [item["movie"]["id"] for item in response.json()["results"]]


def test_pages_and_api_keep_answering_and_health_reports_redis_down_when_redis_stops(private_redis, client, media,
                                                                                     caplog):
    groups = make_taste_catalogue(users_per_genre=5)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Western"][0]
    client.force_login(user)
    cached = [r.movie.pk for r in cache.get_recommendations(user, n=10)]
    health = client.get("/healthz").json()
    assert health["checks"]["redis"] == "up" and health["checks"]["model"] != "none"

    private_redis.kill()

    assert client.get("/").status_code == 200
    assert client.get("/api/v1/recommendations/").status_code == 200
    assert [r.movie.pk for r in cache.get_recommendations(user, n=10)] == cached, "computed in process, same model"
    movie = cache.get_recommendations(user, n=1)[0].movie
    rated = client.post(f"/movies/{movie.pk}/rate/", {"score": "4.5"})
    assert rated.status_code in (200, 302)
    assert client.get(f"/movies/{movie.pk}/").status_code == 200
    client.logout()
    assert client.get("/accounts/login/").status_code == 200
    login = client.post("/accounts/login/", {"login": user.email, "password": DEFAULT_PASSWORD})
    assert login.status_code in (200, 302)

    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "down"
    warnings = [r.name for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert warnings == ["movierec.cache_backends"], "one warning per outage, not per request"


def test_a_hung_redis_costs_one_request_one_short_timeout_then_the_site_stops_waiting_on_it(private_redis, client,
                                                                                         media, settings):
    settings.REDIS_BREAKER_SECONDS = 3
    groups = make_taste_catalogue(users_per_genre=5)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    client.force_login(groups["Horror"][0])
    expected = api_ids(client)

    def timed_requests(count: int) -> list[float]:
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            assert api_ids(client) == expected
            seconds.append(time.perf_counter() - started)
        return seconds

    healthy = timed_requests(5)
    private_redis.freeze()
    try:
        first, *following = timed_requests(6)
        assert breaker.is_open
        # The first request waited on Redis once (REDIS_TIMEOUT = 0.25 s), not for seconds.
        assert first < max(healthy) + 2 * settings.REDIS_TIMEOUT + 0.5
        # The next ones did not wait on Redis at all: five waits would add 1.25 s.
        assert sum(following) < sum(healthy) + settings.REDIS_TIMEOUT
        assert client.get("/healthz").json()["checks"]["redis"] == "down"
    finally:
        private_redis.thaw()

    time.sleep(settings.REDIS_BREAKER_SECONDS)
    hits_before = cache.cache_status()["hits"]
    assert api_ids(client) == expected
    assert not breaker.is_open
    assert cache.cache_status()["hits"] == hits_before + 1, "served from Redis again once it answers"


def test_the_api_never_returns_a_film_just_rated_or_hidden_before_the_refresh_ran(redis_cache, client, media,
                                                                                django_capture_on_commit_callbacks):
    groups = make_taste_catalogue(users_per_genre=5)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Musical"][0]
    client.force_login(user)
    before = api_ids(client)
    cached_before = cached_ids(user)

    # The refresh is sent after commit; here it never runs, so the cached list stays stale.
    with django_capture_on_commit_callbacks(execute=False):
        rate_movie(user=user, movie=Movie.objects.get(pk=before[0]), score=2.0)
        hide_movie(user=user, movie=Movie.objects.get(pk=before[1]))

    assert cached_ids(user) == cached_before, "the cached list still holds both films"
    after = api_ids(client)
    assert before[0] not in after and before[1] not in after
    assert set(before[2:10]) <= set(after) and len(after) == 10  # the rest of the list, refilled from the cache


def test_a_refresh_that_could_not_be_sent_is_sent_by_the_sweep_once_redis_is_back(redis_cache, media,
                                                                                 django_capture_on_commit_callbacks):
    groups = make_taste_catalogue(users_per_genre=5)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Western"][1]
    top = Movie.objects.get(pk=cached_ids(user)[0])

    breaker.trip(ConnectionError("simulated outage"))
    with django_capture_on_commit_callbacks(execute=True):
        rate_movie(user=user, movie=top, score=5.0)
    assert PendingRefresh.objects.filter(user=user, sent_at__isnull=True).exists()

    breaker.reset()
    assert top.pk in cached_ids(user), "the cached list could not be replaced during the outage"
    with django_capture_on_commit_callbacks(execute=True):
        assert resend_lost_refreshes() == 1

    assert top.pk not in cached_ids(user)
    assert not PendingRefresh.objects.exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_worker_survives_redis_killed_and_restarted_mid_queue_and_lost_refreshes_are_resent(
        private_redis, start_private_worker, settings, media):
    settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS = 8  # the refreshes wait in the worker as delayed tasks
    settings.RECOMMENDER_REFRESH_LOST_SECONDS = 1
    groups = make_taste_catalogue(users_per_genre=4)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    worker = start_private_worker()
    users = [groups[genre][0] for genre in groups]
    rated = {}
    for user in users:
        rated[user.pk] = Movie.objects.get(pk=cached_ids(user)[0])
        rate_movie(user=user, movie=rated[user.pk], score=5.0)
    wait_for(lambda: len(re.findall(r"refresh_user\[[^\]]+\] received", worker.log())) == len(users), timeout=30,
             message=f"the worker holds the delayed refreshes\n{worker.log()[-2000:]}")

    private_redis.kill()
    time.sleep(3)
    assert worker.process.poll() is None, f"worker died with Redis\n{worker.log()[-3000:]}"
    private_redis.start()  # empty: the queued refreshes, the pointer and the lists are gone
    wait_for(lambda: worker.log().count("Connected to redis") >= 2, timeout=30,
             message=f"worker reconnected\n{worker.log()[-2000:]}")
    assert worker.process.poll() is None

    time.sleep(settings.RECOMMENDER_REFRESH_DEBOUNCE_SECONDS + settings.RECOMMENDER_REFRESH_LOST_SECONDS)
    breaker.reset()  # this test process saw the outage too; the sweep runs as beat would send it
    assert resend_lost_refreshes() == len(users)

    def all_refreshed():
        return not PendingRefresh.objects.exists() and all(
            (ids := cached_ids(user)) and rated[user.pk].pk not in ids for user in users)

    wait_for(all_refreshed, timeout=60, message=f"lists refreshed after the restart\n{worker.log()[-3000:]}")
    assert "CRITICAL" not in worker.log()
