"""Crafted input to the API: every answer is a clear 4xx (or a 5xx) in the API's JSON error shape, and nothing is written."""
import json

import pytest
from django.urls import path
from rest_framework.test import APIClient

from catalog.models import NotInterested, Rating, WatchlistEntry
from movierec.urls import *  # noqa: F401,F403 (this test URLconf is the site's, plus one failing view)
from movierec.urls import urlpatterns as site_urlpatterns
from tests.factories import make_movie, make_user

pytestmark = pytest.mark.django_db

DEEP = 100_000


def _failing_view(request):
    raise RuntimeError("an unexpected bug")


# Used as ROOT_URLCONF by test_an_unexpected_error_is_a_500_in_the_error_shape: the site's URLs
# and error handlers, plus one API address whose view fails.
urlpatterns = [path("api/v1/failing/", _failing_view), *site_urlpatterns]


@pytest.fixture
def movie():
    return make_movie("Alien", year=1979)


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def nothing_written(user):
    return not (
        Rating.objects.filter(user=user).exists()
        or WatchlistEntry.objects.filter(user=user).exists()
        or NotInterested.objects.filter(user=user).exists()
    )


@pytest.mark.parametrize("address", ["/api/v1/me/ratings/", "/api/v1/me/ratings/bulk/", "/api/v1/me/watchlist/"])
def test_json_nested_too_deeply_is_a_parse_error(client, user, address):
    body = "[" * DEEP + "]" * DEEP

    response = client.post(address, body, content_type="application/json")

    error = assert_error_shape(response, 400, "parse_error")
    assert "nested too deeply" in error["message"]
    assert nothing_written(user)


def test_json_nested_too_deeply_inside_a_field_is_a_parse_error(client, user, movie):
    body = '{"movie": %d, "score": %s4%s}' % (movie.pk, "[" * DEEP, "]" * DEEP)

    response = client.post("/api/v1/me/ratings/", body, content_type="application/json")

    assert_error_shape(response, 400, "parse_error")
    assert nothing_written(user)


def test_sign_in_with_json_nested_too_deeply_is_a_parse_error():
    body = '{"email": ' + "[" * DEEP + "]" * DEEP + "}"

    response = APIClient().post("/api/v1/auth/token/", body, content_type="application/json")

    assert_error_shape(response, 400, "parse_error")


@pytest.mark.parametrize(
    "address",
    [
        "/api/v1/movies/{id}/",
        "/api/v1/me/ratings/{id}/",
        "/api/v1/me/watchlist/{id}/",
        "/api/v1/directors/{id}/",
    ],
)
def test_an_id_of_thousands_of_digits_is_not_found(client, address):
    response = client.get(address.format(id="9" * 5000))

    assert_error_shape(response, 404, "not_found")


def test_an_id_past_64_bits_is_not_found(client):
    response = client.get(f"/api/v1/movies/{2**64}/")

    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize("score", [True, False, "true", [4], {"stars": 4}])
def test_a_score_that_is_not_a_number_is_refused(client, user, movie, score):
    response = client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": score}, format="json")

    error = assert_error_shape(response, 400, "invalid")
    assert list(error["fields"]) == ["score"]
    assert nothing_written(user)


def test_true_is_not_one_star_when_changing_a_rating(client, user, movie):
    response = client.put(f"/api/v1/me/ratings/{movie.pk}/", {"score": True}, format="json")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["score"]
    assert nothing_written(user)


@pytest.mark.parametrize("movie_value", ["{pk}.5", "{pk}.0", "true", '"{pk}.5"', '" {pk}"', '"{pk}e0"', '"٣"'])
@pytest.mark.parametrize(
    "address,body",
    [
        ("/api/v1/me/ratings/", '{"movie": %s, "score": 4}'),
        ("/api/v1/me/ratings/bulk/", '{"ratings": [{"movie": %s, "score": 4}]}'),
        ("/api/v1/me/watchlist/", '{"movie": %s}'),
        ("/api/v1/me/not-interested/", '{"movie": %s}'),
    ],
)
def test_a_movie_id_that_is_not_a_whole_number_is_refused(client, user, movie, address, body, movie_value):
    response = client.post(address, body % movie_value.format(pk=movie.pk), content_type="application/json")

    error = assert_error_shape(response, 400, "invalid")
    assert [name.rsplit(".", 1)[-1] for name in error["fields"]] == ["movie"]
    assert nothing_written(user)


def test_a_movie_id_as_digits_in_text_is_still_accepted(client, user, movie):
    response = client.post("/api/v1/me/ratings/", {"movie": str(movie.pk), "score": 4}, format="json")

    assert response.status_code == 201
    assert Rating.objects.get(user=user).movie == movie


@pytest.mark.parametrize("huge", ["1" + "0" * 30, "-" + "1" + "0" * 30, str(2**63), "1" + "0" * 5000, "1e400"])
def test_huge_numbers_are_refused(client, user, movie, huge):
    for body in ('{"movie": %s, "score": 4}' % huge, '{"movie": %d, "score": %s}' % (movie.pk, huge)):
        response = client.post("/api/v1/me/ratings/", body, content_type="application/json")

        assert response.status_code == 400, body[:80]
        assert response.json()["error"]["code"] in {"invalid", "parse_error"}
    assert nothing_written(user)


def test_a_body_over_the_upload_limit_is_a_413(client, user, movie, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"ratings": [{"movie": movie.pk, "score": 4}] * 1000})

    response = client.post("/api/v1/me/ratings/bulk/", body, content_type="application/json")

    error = assert_error_shape(response, 413, "too_large")
    assert "10,000 bytes" in error["message"]
    assert nothing_written(user)


def test_an_unexpected_error_is_a_500_in_the_error_shape(settings):
    settings.ROOT_URLCONF = __name__
    client = APIClient(raise_request_exception=False)

    response = client.get("/api/v1/failing/")

    error = assert_error_shape(response, 500, "server_error")
    assert "an unexpected bug" not in error["message"], "no internals leak to the client"


def test_the_schema_documents_413_for_operations_with_a_body():
    schema = APIClient().get("/api/v1/schema/?format=json").json()

    rate = schema["paths"]["/api/v1/me/ratings/"]["post"]["responses"]
    listing = schema["paths"]["/api/v1/me/ratings/"]["get"]["responses"]
    assert rate["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "413" not in listing


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_not_a_number_and_infinity_are_refused(client, user, movie, literal):
    for body in ('{"movie": %s, "score": 4}' % literal, '{"movie": %d, "score": %s}' % (movie.pk, literal)):
        response = client.post("/api/v1/me/ratings/", body, content_type="application/json")

        assert response.status_code == 400, body
    assert nothing_written(user)
