"""Deleting an account forgets the person at once: cached lists, sessions, tokens; models keep no free text."""
import pickle

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from accounts.services import issue_api_token
from recommendations import cache, services
from recommendations.dataset import load_training_data, user_feature_names
from recommendations.models import ModelVersion
from tests.conftest import TEST_RUN_PREFIX
from tests.factories import DEFAULT_PASSWORD, make_movie, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

pytestmark = pytest.mark.django_db


def log_in(client, email):
    response = client.post(reverse("account_login"), {"login": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    return client


# --- Cached recommendation lists -------------------------------------------------------------------


@pytest.mark.redis
def test_deleting_an_account_deletes_its_cached_lists_of_every_version_at_once(
    redis_cache, client, django_capture_on_commit_callbacks
):
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    versions = [ModelVersion.objects.create(status=ModelVersion.Status.READY).pk for _ in range(3)]
    movie = make_movie()
    for version in [*map(str, versions), cache.NO_MODEL]:
        cache.cache.set(cache.list_key(version, alice.pk), [{"movie_id": movie.pk}], timeout=3600)
        cache.cache.set(cache.list_key(version, bob.pk), [{"movie_id": movie.pk}], timeout=3600)
    def keys_of(user):  # this test run's keys only: other runs share Redis db 14
        return list(redis_cache.scan_iter(match=f"{TEST_RUN_PREFIX}:*rec:v*:u{user.pk}"))

    for user in (alice, bob):  # the home page's personal rows, under a digest of the user's taste
        cache.default_cache.set(f"rec:home:v{versions[0]}:u{user.pk}:0123abcd", [("top", "Top picks", [])], 3600)
    assert len(keys_of(alice)) == 4

    log_in(client, "alice@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:delete"), {"confirmation": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert keys_of(alice) == []
    assert len(keys_of(bob)) == 4, "other users' lists stay"
    assert cache.default_cache.get(f"rec:home:v{versions[0]}:u{alice.pk}:0123abcd") is None
    assert cache.default_cache.get(f"rec:home:v{versions[0]}:u{bob.pk}:0123abcd") is not None


# --- Sessions and tokens -------------------------------------------------------------------------------


def test_deleting_an_account_deletes_all_its_sessions_and_tokens_at_once(client):
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    phone, laptop, bobs_browser = log_in(client, alice.email), log_in(Client(), alice.email), log_in(Client(), bob.email)
    _, token = issue_api_token(user=alice)
    assert UserSession.objects.filter(user=alice).count() == 2

    phone.post(reverse("accounts:delete"), {"confirmation": DEFAULT_PASSWORD})

    assert not UserSession.objects.filter(user_id=alice.pk).exists()
    assert not any(alice.pk == s.get_decoded().get("_auth_user_id") for s in UserSession.objects.all())
    assert laptop.get(reverse("accounts:profile")).status_code == 302, "the other session is gone too"
    assert UserSession.objects.filter(user=bob).count() == 1
    assert bobs_browser.get(reverse("accounts:profile")).status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").status_code == 401


def test_a_session_records_who_signed_in_and_forgets_them_on_sign_out(client):
    alice = make_user("alice@example.com")

    log_in(client, alice.email)
    assert UserSession.objects.get(session_key=client.session.session_key).user == alice

    client.post(reverse("account_logout"))
    assert not UserSession.objects.filter(user=alice).exists()


# --- No free text a user typed becomes a model feature -----------------------------------------------------


@pytest.mark.parametrize(
    "occupation,feature",
    [
        ("programmer", "occupation:programmer"),
        ("  Writer ", "occupation:writer"),
        ("academic/educator", "occupation:academic/educator"),  # MovieLens 1M's words, as imported
        ("secret-job-bob", None),
        ("Chief of the Bob Family Bakery", None),
        ("", None),
    ],
)
def test_only_listed_occupations_become_a_feature(occupation, feature):
    names = user_feature_names(gender="F", birth_year=1980, occupation=occupation)

    assert [name for name in names if name.startswith("occupation:")] == ([feature] if feature else [])
    assert "gender:F" in names


def test_a_free_text_occupation_never_reaches_a_model_artifact(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue(users_per_genre=6, films_per_genre=14)
    User.objects.filter(pk=groups["Western"][0].pk).update(occupation="secret-job-bob")
    User.objects.filter(pk=groups["Western"][1].pk).update(occupation="librarian")

    features = {name for names in load_training_data().user_features for name in names}
    version = services.fit_model(hyperparameters=FAST_FIT, progress=False)

    assert "occupation:librarian" in features
    assert not any("secret-job-bob" in name for name in features)
    with default_storage.open(version.artifact, "rb") as handle:
        artifact = handle.read()
    assert b"secret-job-bob" not in artifact
    assert pickle.loads(artifact).version_id == version.pk


# --- Artifacts beyond the rollback window are pruned after a publish ------------------------------------------


def version_with_file(status, *, extra_part=False):
    version = ModelVersion.objects.create(status=status)
    name = default_storage.save(f"models/model-{version.pk}.pkl", ContentFile(b"artifact"))
    if extra_part:
        default_storage.save(f"models/model-{version.pk}-part.npz", ContentFile(b"part"))
    version.artifact = name
    version.save(update_fields=["artifact"])
    return version


def stored_files():
    return sorted(default_storage.listdir("models")[1])


def test_publishing_prunes_artifacts_outside_the_rollback_window(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RECOMMENDER_ARTIFACT_DIR = "models"
    settings.RECOMMENDER_ROLLBACK_VERSIONS = 2
    Status = ModelVersion.Status
    oldest = version_with_file(Status.READY, extra_part=True)
    old = version_with_file(Status.READY)
    rejected = version_with_file(Status.REJECTED)
    previous, before_previous = version_with_file(Status.READY), version_with_file(Status.READY)
    training = ModelVersion.objects.create(status=Status.TRAINING)
    default_storage.save(f"models/model-{training.pk}.pkl", ContentFile(b"being written"))
    default_storage.save("models/model-99999.pkl", ContentFile(b"orphan"))  # its version row is gone
    default_storage.save("models/notes.txt", ContentFile(b"not an artifact"))
    newest = version_with_file(Status.READY)

    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(newest)

    kept = {newest.pk, previous.pk, before_previous.pk}
    assert stored_files() == sorted(
        [f"model-{pk}.pkl" for pk in (*kept, training.pk)] + ["notes.txt"]
    )
    for version in (oldest, old, rejected):
        version.refresh_from_db()
        assert version.artifact == ""
    for version in (newest, previous, before_previous):
        version.refresh_from_db()
        assert version.artifact


def test_a_pruned_version_cannot_be_served_again(client, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RECOMMENDER_ARTIFACT_DIR = "models"
    settings.RECOMMENDER_ROLLBACK_VERSIONS = 0
    old = version_with_file(ModelVersion.Status.READY)
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(version_with_file(ModelVersion.Status.READY))
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:recommendations_modelversion_changelist"),
        {"action": "serve_selected_version", "_selected_action": [old.pk]},
        follow=True,
    )

    assert "artifact was pruned" in response.content.decode()
    with pytest.raises(ValueError):
        services.publish_model(ModelVersion.objects.get(pk=old.pk))


def test_sessions_from_before_the_move_keep_their_user_and_leave_djangos_table():
    import importlib

    from django.apps import apps
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    migration = importlib.import_module("accounts.migrations.0003_usersession")
    alice = make_user("alice@example.com")
    signed_in = SessionStore()
    signed_in.update({"_auth_user_id": str(alice.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
    signed_in.create()
    visitor = SessionStore()
    visitor.update({"guest_ratings": {"1": 4.0}})
    visitor.create()

    migration.move_sessions(apps, None)

    assert not Session.objects.exists()
    moved = {s.session_key: s for s in UserSession.objects.all()}
    assert moved[signed_in.session_key].user == alice
    assert moved[signed_in.session_key].get_decoded()["_auth_user_id"] == str(alice.pk)
    assert moved[visitor.session_key].user is None
