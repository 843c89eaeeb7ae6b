"""`manage.py train_model` publishes a version the way refits do: warmed lists, then the cache pointer."""
import pytest
from django.core.management import call_command

from recommendations import cache, pipeline
from recommendations.models import ModelVersion
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def test_train_model_moves_the_cache_pointer_to_the_new_version_and_warms_its_lists(
    redis_cache, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue(users_per_genre=5, films_per_genre=14)
    active = [user for members in groups.values() for user in members]
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.refit_and_publish(hyperparameters=FAST_FIT)
    previous = ModelVersion.objects.get(is_current=True)
    assert cache.current_version_pointer() == str(previous.pk)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("train_model", "--epochs", "5")

    new = ModelVersion.objects.get(is_current=True)
    assert new.pk != previous.pk
    assert cache.current_version_pointer() == str(new.pk), "readers follow the new version"
    for user in active:
        assert cache.cache.get(cache.list_key(str(new.pk), user.pk)), f"user {user.pk} has a warm list"


def test_train_model_without_publishing_leaves_the_pointer(redis_cache, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    make_taste_catalogue(users_per_genre=5, films_per_genre=14)

    call_command("train_model", "--epochs", "5", "--no-publish")

    assert ModelVersion.objects.get().status == ModelVersion.Status.READY
    assert cache.current_version_pointer() == cache.NO_MODEL
