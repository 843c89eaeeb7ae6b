import pytest

from recommendations import pipeline
from recommendations.models import ModelVersion
from tests.pipeline_data import FAST_FIT, make_taste_catalogue


def test_healthz_reports_database_up(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "up"


@pytest.mark.redis
def test_healthz_reports_redis_up_and_no_model_on_a_fresh_install(client, db, redis_cache):
    checks = client.get("/healthz").json()["checks"]

    assert checks["redis"] == "up"
    assert checks["model"] == "none"


@pytest.mark.redis
def test_healthz_reports_the_published_model_version(client, db, redis_cache, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    make_taste_catalogue(users_per_genre=3)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["model"] == str(ModelVersion.objects.get(is_current=True).pk)


def test_healthz_without_redis_configured_still_serves(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "not configured"
