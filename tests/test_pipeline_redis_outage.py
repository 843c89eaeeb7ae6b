"""Redis stops mid-test (our own redis-server on a spare port): the site keeps answering."""
import shutil
import socket
import subprocess
import time

import pytest
import redis

from recommendations import cache, pipeline
from tests.conftest import redis_cache_settings
from tests.factories import DEFAULT_PASSWORD
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

PORT = 6390


@pytest.fixture
def own_redis(settings, tmp_path):
    """A throw-away redis-server on port 6390 as cache; the test may kill it."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is already in use")
    process = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{PORT}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    settings.CACHES = redis_cache_settings(url)
    settings.REDIS_URL = url
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_pages_and_api_keep_answering_and_health_reports_redis_down_when_redis_stops(own_redis, client, settings,
                                                                                     tmp_path, caplog):
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue(users_per_genre=5)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Western"][0]
    client.force_login(user)
    cached = [r.movie.pk for r in cache.get_recommendations(user, n=10)]
    health = client.get("/healthz").json()
    assert health["checks"]["redis"] == "up" and health["checks"]["model"] != "none"

    own_redis.kill()
    own_redis.wait()

    assert client.get("/").status_code == 200
    api = client.get("/api/v1/recommendations/")
    assert api.status_code == 200
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
    assert sorted(warnings) == ["movierec.cache_backends", "recommendations.cache"], "one warning per outage, not per request"
