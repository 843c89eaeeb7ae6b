"""A signed-in user's API rows and home page rows kept whole in Redis (recommendations.cache,
"Whole answers"): a kept answer is the computed one, still logs its impressions, and never
outlives a rating, a hidden film, a refreshed list, a publish, the account or Redis itself."""
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient, APIRequestFactory

from accounts.services import delete_account, issue_api_token
from catalog.models import Movie
from catalog.services import hide_movie, rate_movie
from movierec.api import TokenAuthentication
from recommendations import cache, impressions, selectors
from tests.test_impressions import shown, world  # noqa: F401 (fixture)

API = "/api/v1/recommendations/"
QUERIES = [{"row": "top", "n": 5}, {"row": "genre", "genre": "western", "n": 5}, {"row": "because", "n": 5}]


@pytest.fixture
def fan_api(private_redis, world):  # noqa: F811 (the fixture imported above)
    api = APIClient()
    api.force_authenticate(world["fan"])
    api.fan = world["fan"]
    return api


def _slots(user) -> list[bytes]:
    """The fields of the user's kept answers (each with its impressions' events beside it)."""
    client = cache.redis_client()
    fields = client.hkeys(cache.cache.make_key(cache.responses_key(cache.user_list_version(user), user.pk)))
    return [field for field in fields if not field.endswith(b":shown")]


def _films(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["movie"]["id"] for item in response.json()["results"]]


@pytest.mark.django_db(transaction=True)
def test_a_kept_answer_is_the_computed_one_and_still_logs_its_impression(fan_api):
    movie = Movie.objects.exclude(ratings__user=fan_api.fan).first()
    queries = [*QUERIES, {"row": "similar", "movie": movie.pk, "n": 5}]
    first = [fan_api.get(API, query) for query in queries]
    assert len(_slots(fan_api.fan)) == len(queries)

    with CaptureQueriesContext(connection) as kept_queries:
        again = [fan_api.get(API, query) for query in queries]
    assert [r.content for r in again] == [r.content for r in first]
    assert [r["Content-Type"] for r in again] == ["application/json"] * len(queries)
    # A kept answer reads the user's taste fingerprint and nothing about the films.
    assert not [q for q in kept_queries.captured_queries if "catalog_movie" in q["sql"]]

    impressions.flush()
    for query, response in zip(queries, first):
        logged = [i.movie_id for i in shown(fan_api.fan, query["row"])]
        assert logged == _films(response) * 2, f"{query['row']}: computed and kept answers both log"


@pytest.mark.django_db(transaction=True)
def test_a_film_rated_or_hidden_leaves_every_kept_row_at_once(fan_api):
    for query in QUERIES:
        before = _films(fan_api.get(API, query))
        assert _films(fan_api.get(API, query)) == before
        rate_movie(user=fan_api.fan, movie=Movie.objects.get(pk=before[0]), score=2.0)
        hide_movie(user=fan_api.fan, movie=Movie.objects.get(pk=before[1]))
        after = _films(fan_api.get(API, query))
        assert before[0] not in after and before[1] not in after, query


@pytest.mark.django_db(transaction=True)
def test_a_refreshed_list_or_a_publish_replaces_the_kept_top_row(fan_api):
    top = {"row": "top", "n": 5}
    before = _films(fan_api.get(API, top))
    others = list(Movie.objects.exclude(ratings__user=fan_api.fan).exclude(pk__in=before)
                  .order_by("pk")[:5])
    refreshed = [selectors.Recommendation(movie, 1.0, 4.0, "refreshed") for movie in others]
    cache.store_recommendations(cache.user_list_version(fan_api.fan), fan_api.fan.pk, refreshed)
    assert set(_films(fan_api.get(API, top))) == {movie.pk for movie in others}

    cache.switch_pointer("9999")  # a publish: readers follow the pointer, and their lists
    assert not _slots(fan_api.fan)
    assert len(_films(fan_api.get(API, top))) == 5


@pytest.mark.django_db(transaction=True)
def test_deleting_the_account_deletes_its_kept_answers(fan_api):
    for query in QUERIES:
        fan_api.get(API, query)
    key = cache.cache.make_key(cache.responses_key(cache.user_list_version(fan_api.fan), fan_api.fan.pk))
    assert cache.redis_client().exists(key)
    delete_account(user=fan_api.fan)
    assert not cache.redis_client().exists(key)


@pytest.mark.django_db(transaction=True)
def test_with_redis_dead_or_hung_the_rows_are_computed(fan_api, private_redis, settings):
    answers = {q["row"]: _films(fan_api.get(API, q)) for q in QUERIES}
    private_redis.kill()
    assert {q["row"]: _films(fan_api.get(API, q)) for q in QUERIES} == answers
    private_redis.start()
    from movierec.cache_backends import breaker

    breaker.reset()
    private_redis.freeze()
    try:
        assert {q["row"]: _films(fan_api.get(API, q)) for q in QUERIES} == answers
    finally:
        private_redis.thaw()


@pytest.mark.django_db
def test_a_token_is_checked_in_one_query_and_an_expired_one_is_still_refused():
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import AuthToken

    from tests.factories import make_user

    user = make_user()
    other, _ = issue_api_token(user=user)
    token, text = issue_api_token(user=user)
    expiry = timezone.now() + timedelta(seconds=1)
    AuthToken.objects.filter(pk=token.pk).update(expiry=expiry)
    request = APIRequestFactory().get(API, HTTP_AUTHORIZATION=f"Token {text}")
    with CaptureQueriesContext(connection) as queries:
        assert TokenAuthentication().authenticate(request)[0] == user
    assert len(queries) == 1

    time.sleep(max(0.0, (expiry - timezone.now()).total_seconds()) + 0.05)
    from rest_framework.exceptions import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        TokenAuthentication().authenticate(APIRequestFactory().get(API, HTTP_AUTHORIZATION=f"Token {text}"))
    assert not AuthToken.objects.filter(pk=token.pk).exists() and AuthToken.objects.filter(pk=other.pk).exists()


def _home_rows(client) -> list[str]:
    import re

    html = client.get("/").content.decode()
    return re.findall(r'<section class="shelf shelf--\w+".*?</section>', html, re.S)


@pytest.mark.django_db(transaction=True)
def test_kept_home_rows_are_the_rendered_ones_and_lose_a_rated_film_at_once(private_redis, world, client):  # noqa: F811
    fan = world["fan"]
    client.force_login(fan)
    first = _home_rows(client)
    assert first and len(_slots(fan)) == 1
    with CaptureQueriesContext(connection) as queries:
        assert _home_rows(client) == first
    assert not [q for q in queries.captured_queries if "catalog_movie" in q["sql"]], "rows read from the kept answer"
    impressions.flush()
    assert len(shown(fan)) == 2 * sum(html.count('class="card"') for html in first)

    rated = Movie.objects.get(pk=shown(fan, "top")[0].movie_id)
    rate_movie(user=fan, movie=rated, score=2.0)
    assert f'href="/movies/{rated.pk}/"' not in "".join(_home_rows(client))
