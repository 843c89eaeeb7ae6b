"""The recommendation cache and the publish rules, against the real Redis (db 14), tasks in process."""
import json

import pytest
from django.urls import reverse

from catalog.models import Movie
from catalog.services import rate_movie

from recommendations import cache, pipeline, selectors, services
from recommendations.models import ModelVersion
from recommendations.tasks import maybe_refit
from tests.conftest import TEST_QUEUE
from tests.factories import make_user
from tests.pipeline_data import FAST_FIT, UNTRAINED_FIT, make_popularity_catalogue, make_taste_catalogue

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def cached_movie_ids(version, user):
    payload = cache.cache.get(cache.list_key(str(version), user.pk))
    return None if payload is None else [item["movie_id"] for item in payload]


def test_publishing_warms_every_active_users_list_under_the_new_version_then_switches_readers(redis_cache, media):
    groups = make_taste_catalogue()
    users = [user for members in groups.values() for user in members]

    outcome = pipeline.refit_and_publish(hyperparameters=FAST_FIT)

    version = ModelVersion.objects.get(is_current=True)
    assert outcome == {"outcome": "published", "version": version.pk, "warmed": len(users)}
    assert cache.current_version_pointer() == str(version.pk)
    for user in users:
        assert cached_movie_ids(version.pk, user) == [r.movie.pk for r in selectors.recommend_for_user(user, n=60)]
    status = cache.cache_status()
    assert status["keys"] == len(users) and status["last_warm"]["version"] == str(version.pk)



def test_users_who_never_sign_in_get_no_warmed_list(redis_cache, media):
    groups = make_taste_catalogue()
    simulated = groups["Western"][0]
    simulated.source = simulated.Source.SIMULATED
    simulated.save(update_fields=["source"])

    pipeline.refit_and_publish(hyperparameters=FAST_FIT)

    version = ModelVersion.objects.get(is_current=True)
    assert cached_movie_ids(version.pk, simulated) is None
    assert cached_movie_ids(version.pk, groups["Western"][1]) is not None

def test_reads_come_from_redis_and_a_miss_is_computed_and_stored(redis_cache, media):
    groups = make_taste_catalogue()
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    warmed_user = groups["Western"][0]
    newcomer = make_user()

    first = cache.get_recommendations(warmed_user, n=10)
    assert [r.movie.pk for r in first] == cached_movie_ids(cache.current_version_pointer(), warmed_user)[:10]
    assert all(r.explanation for r in first)

    assert cached_movie_ids(cache.current_version_pointer(), newcomer) is None
    computed = cache.get_recommendations(newcomer, n=10)
    assert len(computed) == 10
    assert cached_movie_ids(cache.current_version_pointer(), newcomer)[:10] == [r.movie.pk for r in computed]

    status = cache.cache_status()
    assert (status["hits"], status["misses"]) == (1, 1)
    assert status["hit_ratio"] == 0.5


def test_old_versions_lists_expire_and_are_no_longer_read(redis_cache, media, settings):
    groups = make_taste_catalogue()
    user = groups["Musical"][0]
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    old = cache.current_version_pointer()
    pipeline.refit_and_publish(hyperparameters={**FAST_FIT, "seed": 1})
    new = cache.current_version_pointer()

    assert new != old
    old_key = cache.cache.make_key(cache.list_key(old, user.pk))
    assert 0 < redis_cache.ttl(old_key) <= settings.RECOMMENDER_CACHE_TTL
    assert [r.movie.pk for r in cache.get_recommendations(user, n=60)] == cached_movie_ids(new, user)


def test_fresh_install_serves_popularity_and_enqueues_the_first_fit_once(worker_env, redis_cache,
                                                                          django_capture_on_commit_callbacks):
    make_taste_catalogue(users_per_genre=4)
    visitor = make_user()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = cache.get_recommendations(visitor, n=5)
        cache.cache.delete(cache.list_key(cache.NO_MODEL, visitor.pk))
        second = cache.get_recommendations(visitor, n=5)

    assert len(first) == 5 and [r.movie.pk for r in first] == [r.movie.pk for r in second]
    assert all(r.explanation == "Popular on movierec" for r in first)
    assert len(callbacks) == 1, "the first fit is enqueued once"
    queued = [json.loads(message)["headers"]["task"] for message in redis_cache.lrange(TEST_QUEUE, 0, -1)]
    assert queued == ["recommendations.refit_model"]


def test_a_model_worse_than_popularity_is_rejected_and_the_previous_version_keeps_serving(redis_cache, media):
    make_popularity_catalogue()
    previous = services.fit_model(progress=False)
    pipeline.publish_and_warm(previous)

    outcome = pipeline.refit_and_publish(hyperparameters=UNTRAINED_FIT)

    rejected = ModelVersion.objects.exclude(pk=previous.pk).get()
    assert outcome["outcome"] == "rejected" and rejected.status == ModelVersion.Status.REJECTED
    assert "worse than popularity" in rejected.error and f"v{previous.pk} keeps serving" in rejected.error
    assert ModelVersion.objects.get(is_current=True) == previous
    assert cache.current_version_pointer() == str(previous.pk)


def test_rolling_back_serves_the_older_version_again_with_a_warm_cache(redis_cache, media):
    groups = make_taste_catalogue()
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    older = ModelVersion.objects.get(is_current=True)
    pipeline.refit_and_publish(hyperparameters={**FAST_FIT, "seed": 1})
    older.refresh_from_db()

    warmed = pipeline.rollback_to(older)

    assert warmed == sum(len(members) for members in groups.values())
    assert ModelVersion.objects.get(is_current=True) == older
    assert cache.current_version_pointer() == str(older.pk)


def test_a_rejected_version_cannot_be_rolled_back_to(redis_cache, media):
    make_popularity_catalogue()
    pipeline.refit_and_publish(hyperparameters=UNTRAINED_FIT)
    rejected = ModelVersion.objects.get()

    with pytest.raises(ValueError, match="only a ready or published fit can serve"):
        pipeline.rollback_to(rejected)


def test_a_refit_is_enqueued_once_enough_new_ratings_arrived(redis_cache, media, settings,
                                                             django_capture_on_commit_callbacks):
    settings.RECOMMENDER_REFIT_MIN_NEW_RATINGS = 20
    groups = make_taste_catalogue(users_per_genre=4)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    user = groups["Horror"][0]

    unrated = list(Movie.objects.exclude(ratings__user=user)[:20])
    for movie in unrated[:19]:
        rate_movie(user=user, movie=movie, score=3.0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert maybe_refit() is False
    assert callbacks == []

    rate_movie(user=user, movie=unrated[19], score=3.0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert maybe_refit() is True
    assert len(callbacks) == 1


def test_staff_model_page_shows_versions_and_cache_and_refits_on_request(redis_cache, media, client,
                                                                          django_capture_on_commit_callbacks):
    make_taste_catalogue(users_per_genre=4)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    version = ModelVersion.objects.get(is_current=True)
    staff = make_user(is_staff=True, is_superuser=True)
    client.force_login(staff)

    page = client.get(reverse("admin:recommendations_modelversion_changelist"))

    assert page.status_code == 200
    text = page.content.decode()
    assert f"v{version.pk}" in text and "Recommendation cache" in text and "Refit now" in text
    assert f"{version.n_interactions}" in text
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("admin:recommendations_modelversion_refit"))
    assert response.status_code == 302 and len(callbacks) == 1


def test_staff_roll_back_from_the_model_page_serves_the_chosen_version(redis_cache, media, client,
                                                                       django_capture_on_commit_callbacks):
    make_taste_catalogue(users_per_genre=4)
    pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    older = ModelVersion.objects.get(is_current=True)
    pipeline.refit_and_publish(hyperparameters={**FAST_FIT, "seed": 1})
    client.force_login(make_user(is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:recommendations_modelversion_changelist"),
                               {"action": "serve_selected_version", "_selected_action": [older.pk]})

    assert response.status_code == 302
    assert ModelVersion.objects.get(is_current=True) == older
    assert cache.current_version_pointer() == str(older.pk)


def test_a_nightly_refit_and_a_frequent_new_ratings_check_are_scheduled_and_editable_in_admin(client):
    from django_celery_beat.models import PeriodicTask

    schedules = {task.task: task for task in PeriodicTask.objects.filter(enabled=True)}
    assert schedules["recommendations.refit_model"].crontab.hour == "3"
    assert schedules["recommendations.maybe_refit"].interval.every == 10
    client.force_login(make_user(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:django_celery_beat_periodictask_change", args=[schedules["recommendations.refit_model"].pk]))
    assert page.status_code == 200
