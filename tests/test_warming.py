"""Warming many users at once gives each the list recommend_for_user serves them."""
import numpy as np
import pytest

from catalog.models import Genre, Movie, NotInterested, Rating
from recommendations import cache, pipeline, selectors, services, shared_work, warming
from recommendations.models import DiscoveryPreference, GenrePreference, ModelVersion
from tests.factories import make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue
from tests.test_pipeline_worker import wait_for

pytestmark = [pytest.mark.redis]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def served(user):
    return [(r.movie.pk, r.predicted_stars, r.explanation) for r in selectors.recommend_for_user(user, n=20)]


def batched(lists, user):
    return [(r.movie.pk, r.predicted_stars, r.explanation) for r in lists[user.pk]]


@pytest.mark.django_db
def test_a_chunk_of_users_gets_exactly_the_lists_served_one_by_one(redis_cache, media):
    groups = make_taste_catalogue()
    version = services.fit_model(hyperparameters=FAST_FIT, progress=False)
    services.publish_model(version)
    selectors.expire_current_model()
    western, musical, horror = groups["Western"][0], groups["Musical"][0], groups["Horror"][0]
    # Users whose state differs from what the model was trained on, each in its own way.
    NotInterested.objects.create(user=western, movie=Movie.objects.filter(title__startswith="Western").exclude(
        ratings__user=western).first())
    GenrePreference.objects.create(user=musical, genre=Genre.objects.get(name="Horror"))
    DiscoveryPreference.objects.create(user=horror, level=4)
    newcomer = make_user()
    Rating.objects.create(user=newcomer, movie=Movie.objects.get(title="Horror 3"), score=5.0,
                          created_at=western.date_joined, updated_at=western.date_joined)
    stranger = make_user()  # no ratings at all
    users = [u for members in groups.values() for u in members] + [newcomer, stranger]

    lists = warming.recommend_for_users(selectors.current_model(), [u.pk for u in users], n=20)

    assert set(lists) == {u.pk for u in users}
    for user in users:
        assert batched(lists, user) == served(user), user
    assert batched(lists, western) and batched(lists, stranger)


@pytest.mark.django_db(transaction=True)
def test_warming_in_forked_processes_writes_every_list_as_served(redis_cache, media, settings, monkeypatch):
    groups = make_taste_catalogue()
    users = [u for members in groups.values() for u in members]
    settings.RECOMMENDER_WARM_PROCESSES = 2
    monkeypatch.setattr(pipeline, "WARM_BATCH", 8)  # 45 users: 6 chunks shared by 2 processes

    outcome = pipeline.refit_and_publish(hyperparameters=FAST_FIT)

    version = ModelVersion.objects.get(is_current=True)
    assert outcome == {"outcome": "published", "version": version.pk, "warmed": len(users)}
    for user in users:
        payload = cache.cache.get(cache.list_key(str(version.pk), user.pk))
        assert [item["movie_id"] for item in payload] == [r.movie.pk for r in selectors.recommend_for_user(user, n=60)]
    steps = [entry[0] for entry in ModelVersion.objects.get(pk=version.pk).metrics["steps"]]
    assert {"load", "holdout check", "lightfm", "ease", "neural", "save artifact", "publish", "warm"} <= set(steps)
    assert np.isfinite([entry[2] for entry in ModelVersion.objects.get(pk=version.pk).metrics["steps"]]).all()


@pytest.mark.django_db(transaction=True)
def test_a_refit_inside_a_celery_prefork_child_warms_in_its_own_process(redis_cache, media, settings, monkeypatch):
    """Celery's prefork children are daemonic and may not fork: the refit still publishes and warms."""
    import multiprocessing

    groups = make_taste_catalogue()
    users = [u for members in groups.values() for u in members]
    settings.RECOMMENDER_WARM_PROCESSES = 2
    monkeypatch.setattr(pipeline, "WARM_BATCH", 8)
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)  # as in a prefork child

    outcome = pipeline.refit_and_publish(hyperparameters=FAST_FIT)

    version = ModelVersion.objects.get(is_current=True)
    assert outcome == {"outcome": "published", "version": version.pk, "warmed": len(users)}
    assert cache.current_version_pointer() == str(version.pk)


@pytest.mark.django_db(transaction=True)
def test_a_refit_in_a_worker_shares_its_warming_with_other_worker_processes(start_worker, media, settings, monkeypatch):
    groups = make_taste_catalogue()
    users = [u for members in groups.values() for u in members]
    helper = start_worker()
    settings.RECOMMENDER_WARM_HELPERS = 2
    monkeypatch.setattr(pipeline, "WARM_BATCH", 4)  # 45 users: 12 chunks on the shared board

    outcome = pipeline.refit_and_publish(hyperparameters=FAST_FIT, with_workers=True)

    version = ModelVersion.objects.get(is_current=True)
    assert outcome == {"outcome": "published", "version": version.pk, "warmed": len(users)}
    assert cache.current_version_pointer() == str(version.pk)
    for user in users:
        payload = cache.cache.get(cache.list_key(str(version.pk), user.pk))
        assert [item["movie_id"] for item in payload] == [r.movie.pk for r in selectors.recommend_for_user(user, n=60)]
    wait_for(lambda: helper.log().count("recommendations.warm_chunks") >= 4, timeout=60,
             message="the helper worker did not run both warm_chunks tasks")
    assert "Traceback" not in helper.log()


@pytest.mark.django_db
def test_chunks_a_helper_claimed_and_never_finished_are_done_by_the_owner(redis_cache):
    board = shared_work.Board.post("test", [[1, 2], [3], [4, 5, 6], [7]])
    helper = shared_work.Board(board.name)
    dead_helpers_chunk = next(helper.claims())  # claimed, then the helper is killed
    for index, chunk in board.claims():
        board.finish(index, len(chunk))

    done_here = []
    total = board.complete(lambda chunk: done_here.append(chunk) or len(chunk), wait_seconds=0.5)

    assert done_here == [dead_helpers_chunk[1]]
    assert total == 7
    assert list(board.claims()) == [] and redis_cache.exists(board.chunks_key) == 0


@pytest.mark.django_db(transaction=True)
def test_a_refit_task_without_redis_warms_every_list_in_its_own_process(media, monkeypatch):
    """A deployment without Redis runs tasks in process with an in-memory cache: no board to share."""
    groups = make_taste_catalogue()
    users = [u for members in groups.values() for u in members]
    monkeypatch.setattr(pipeline, "WARM_BATCH", 8)

    outcome = pipeline.refit_and_publish(hyperparameters=FAST_FIT, with_workers=True)

    version = ModelVersion.objects.get(is_current=True)
    assert outcome == {"outcome": "published", "version": version.pk, "warmed": len(users)}
    assert [r.movie.pk for r in cache.get_recommendations(users[0], n=20)] == \
        [r.movie.pk for r in selectors.recommend_for_user(users[0], n=20)]
