"""What operators see: Prometheus metrics at /metrics and one log line per request."""
import json
import urllib.request

import pytest

from bench.servers import WEB_PORTS, Gunicorn, free_port
from django.contrib.auth import get_user_model

from recommendations import cache, pipeline, services
from recommendations.models import ModelVersion
from recommendations.tasks import request_refit
from tests import conftest
from tests.factories import make_user
from tests.pipeline_data import UNTRAINED_FIT, make_popularity_catalogue

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of a Prometheus text page."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_are_refused_to_other_addresses_and_served_to_staff_and_the_scraper(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.2.0/24"]

    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403
    client.force_login(make_user())
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.99").status_code == 200
    client.force_login(make_user(is_staff=True))
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200


@pytest.mark.redis
def test_metrics_show_latency_by_view_cache_hits_and_misses_refit_outcomes_queue_length_and_redis_state(
        client, worker_env, settings, django_capture_on_commit_callbacks):
    make_popularity_catalogue()
    pipeline.publish_and_warm(services.fit_model(progress=False))
    pipeline.refit_and_publish(hyperparameters=UNTRAINED_FIT)  # rejected by the holdout check
    warmed, newcomer = get_user_model().objects.filter(ratings__isnull=False).first(), make_user()
    cache.get_recommendations(warmed, n=10)
    cache.get_recommendations(newcomer, n=10)
    with django_capture_on_commit_callbacks(execute=True):
        request_refit(reason="waits in the queue: no worker runs")
    client.get("/healthz")
    client.get("/healthz")

    page = client.get("/metrics")

    assert page.status_code == 200 and page["Content-Type"].startswith("text/plain")
    values = samples(page.content.decode())
    assert values['movierec_request_duration_seconds_count{method="GET",status="2xx",view="healthz"}'] >= 2
    assert (values["movierec_recommendation_cache_hits_total"], values["movierec_recommendation_cache_misses_total"]) == (1, 1)
    assert values['movierec_model_versions{status="published"}'] == 1
    assert values['movierec_model_versions{status="rejected"}'] == 1
    assert values["movierec_serving_model_version"] == ModelVersion.objects.get(is_current=True).pk
    assert values["movierec_last_refit_seconds"] > 0
    assert values["movierec_celery_queue_length"] == 1
    assert (values["movierec_redis_up"], values["movierec_redis_breaker_open"]) == (1, 0)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_under_gunicorn_metrics_add_up_every_worker_and_each_request_logs_one_json_line(tmp_path, settings):
    user = make_user()
    server = Gunicorn(
        {"DATABASE_URL": conftest.test_database_url(), "REDIS_URL": "", "LOG_FORMAT": "json", "MEDIA_ROOT": str(tmp_path)},
        port=free_port(WEB_PORTS), log_path=tmp_path / "gunicorn.log", workers=2,
    ).start()
    try:
        for index in range(30):
            request = urllib.request.Request(f"{server.url}/api/v1/movies/", headers={"X-Request-ID": f"req-{index}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.headers["X-Request-ID"] == f"req-{index}"
        from accounts.services import issue_api_token

        _, token = issue_api_token(user=user)
        signed_in = urllib.request.Request(f"{server.url}/api/v1/me/", headers={"Authorization": f"Token {token}",
                                                                                 "X-Request-ID": "signed-in"})
        urllib.request.urlopen(signed_in, timeout=10).read()
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            values = samples(response.read().decode())
    finally:
        server.stop()

    assert values['movierec_request_duration_seconds_count{method="GET",status="2xx",view="movie-list"}'] == 30
    lines = [json.loads(line) for line in (tmp_path / "gunicorn.log").read_text().splitlines() if line.startswith("{")]
    requests = {line["request_id"]: line for line in lines if line["logger"] == "movierec.requests"}
    assert {f"req-{index}" for index in range(30)} <= set(requests)
    first = requests["req-0"]
    assert (first["view"], first["status"], first["path"], first["user_id"]) == ("movie-list", 200, "/api/v1/movies/", None)
    assert first["duration_ms"] > 0
    assert requests["signed-in"]["user_id"] == user.pk
