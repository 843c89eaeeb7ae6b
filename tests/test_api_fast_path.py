"""The recommendations endpoint serves a token client's kept answer before DRF's dispatch
(recommendations.api.recommendations): the same bytes and headers as DRF's view, the token and
the throttle checked the same way, impressions logged, and never a film the user rated or hid.
Anything it cannot serve at once goes through the DRF view, which answers as it always did."""
import time
from contextlib import contextmanager
from unittest import mock

import pytest
import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import issue_api_token
from catalog.models import Movie
from catalog.services import hide_movie, rate_movie
from recommendations import api as recommendations_api
from recommendations import cache, impressions
from tests.test_impressions import shown, world  # noqa: F401 (fixture)

API = "/api/v1/recommendations/"
QUERIES = [{"row": "top", "n": 5}, {"row": "genre", "genre": "western", "n": 5}, {"row": "because", "n": 5}]


@pytest.fixture
def fan(private_redis, world):  # noqa: F811 (the fixture imported above)
    user = world["fan"]
    user.token_text = issue_api_token(user=user)[1]
    return user


def _get(user_or_text, query, **headers):
    text = getattr(user_or_text, "token_text", user_or_text)
    return Client().get(API, query, HTTP_AUTHORIZATION=f"Token {text}", **headers)


def _headers(response) -> dict:
    return {name: value for name, value in response.items() if name != "X-Request-ID"}


def _films(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["movie"]["id"] for item in response.json()["results"]]


def _through_drf():
    """Spy on the DRF view: called means the fast path did not answer."""
    return mock.patch.object(recommendations_api, "_drf_recommendations",
                             wraps=recommendations_api._drf_recommendations)


@pytest.mark.django_db(transaction=True)
def test_a_kept_answer_served_before_drf_is_the_drf_answer_byte_for_byte(fan):
    movie = Movie.objects.exclude(ratings__user=fan).first()
    for query in [*QUERIES, {"row": "similar", "movie": movie.pk, "n": 5}]:
        with _through_drf() as drf:
            computed = _get(fan, query)
        assert drf.call_count == 1, "the first request computes the row through DRF"
        with _through_drf() as drf, CaptureQueriesContext(connection) as queries:
            kept = _get(fan, query)
        assert drf.call_count == 0, f"{query['row']}: the kept answer is served before DRF"
        assert kept.status_code == computed.status_code == 200
        assert kept.content == computed.content
        assert _headers(kept) == _headers(computed)
        assert len(queries) == 1, "the taste fingerprint (the token was checked a moment ago); nothing about the films"


@pytest.mark.django_db(transaction=True)
def test_a_kept_answer_served_before_drf_still_logs_its_impressions(fan):
    query = {"row": "top", "n": 5}
    films = _films(_get(fan, query))
    with _through_drf() as drf:
        assert _films(_get(fan, query)) == films
    assert drf.call_count == 0
    impressions.flush()
    assert [i.movie_id for i in shown(fan, "top")] == films * 2


@contextmanager
def _redis_round_trips():
    """A list whose first item counts what redis-py sends to a server (a script is one round trip)."""
    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, *args, **kwargs):
        sent[0] += 1
        return original(self, *args, **kwargs)

    with mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", send_packed_command):
        yield sent


def _logged(impression) -> tuple:
    return impression.movie_id, impression.row, impression.position, impression.model_version_id, \
        impression.experiment_id, impression.arm


@pytest.mark.django_db(transaction=True)
def test_a_kept_answer_is_one_redis_round_trip_that_logs_its_impressions_when_read(fan):
    query = {"row": "top", "n": 5}
    films = _films(_get(fan, query))  # computed through DRF, kept
    assert _films(_get(fan, query)) == films  # kept
    time.sleep(0.05)
    read_at = timezone.now()
    with _through_drf() as drf, _redis_round_trips() as sent:
        assert _films(_get(fan, query)) == films
    assert drf.call_count == 0
    assert sent[0] == 1, "the answer, the throttle, the hit and the impressions in one script"

    impressions.flush()
    logged = shown(fan, "top")
    assert [i.movie_id for i in logged] == films * 3
    computed, kept = logged[:len(films)], logged[-len(films):]
    assert [_logged(i) for i in kept] == [_logged(i) for i in computed]
    assert [i.position for i in kept] == list(range(len(films)))
    assert all(i.shown_at >= read_at for i in kept), "logged at the time it was shown, not when kept"
    assert all(i.shown_at < read_at for i in computed)


@pytest.mark.django_db(transaction=True)
def test_an_answer_kept_without_its_impressions_still_logs_them(fan):
    """An answer kept by the release before (no events beside it) is served, its impressions
    logged by the web process."""
    query = {"row": "top", "n": 5}
    films = _films(_get(fan, query))
    client = cache.redis_client()
    for key in client.scan_iter(match="*:responses"):
        client.hdel(key, *[field for field in client.hkeys(key) if field.endswith(b":shown")])
    with _through_drf() as drf:
        assert _films(_get(fan, query)) == films
    assert drf.call_count == 0
    impressions.flush()
    assert [i.movie_id for i in shown(fan, "top")] == films * 2


@pytest.mark.django_db(transaction=True)
def test_a_revoked_or_wrong_token_is_refused_as_drf_refuses_it(fan):
    query = {"row": "top", "n": 5}
    _get(fan, query)
    assert _get(fan, query).status_code == 200  # kept
    fan.auth_token_set.all().delete()  # signed out everywhere
    refused = _get(fan, query)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert refused["WWW-Authenticate"] == "Token"
    wrong = _get("not-a-token", query)
    assert (wrong.status_code, wrong.json()) == (refused.status_code, refused.json())


@pytest.mark.django_db(transaction=True)
def test_a_film_rated_or_hidden_never_comes_back_from_a_kept_answer(fan):
    for query in QUERIES:
        before = _films(_get(fan, query))
        assert _films(_get(fan, query)) == before  # kept
        rate_movie(user=fan, movie=Movie.objects.get(pk=before[0]), score=2.0)
        hide_movie(user=fan, movie=Movie.objects.get(pk=before[1]))
        after = _films(_get(fan, query))
        assert before[0] not in after and before[1] not in after, query


@pytest.mark.django_db(transaction=True)
def test_kept_answers_count_in_the_same_throttle_window_and_the_full_window_is_a_429(fan, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"}}
    query = {"row": "top", "n": 5}
    with _through_drf() as drf:
        answers = [_get(fan, query) for _ in range(3)]  # computed (DRF), then two kept
        assert drf.call_count == 1
        refused = _get(fan, query)
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


@pytest.mark.django_db(transaction=True)
def test_with_redis_dead_a_token_client_gets_the_computed_row(fan, private_redis):
    answers = {q["row"]: _films(_get(fan, q)) for q in QUERIES}
    private_redis.kill()
    try:
        assert {q["row"]: _films(_get(fan, q)) for q in QUERIES} == answers
    finally:
        from movierec.cache_backends import breaker

        breaker.reset()


@pytest.mark.django_db(transaction=True)
def test_what_the_fast_path_does_not_serve_goes_to_drf(fan):
    query = {"row": "top", "n": 5}
    _get(fan, query)
    with _through_drf() as drf:
        assert _get(fan, query, HTTP_ACCEPT="text/html").status_code == 406
        assert _get(fan, {**query, "format": "json"}).status_code == 200
        client = Client()
        client.force_login(fan)
        assert client.get(API, query).status_code == 200  # a session, not a token
    assert drf.call_count == 3
