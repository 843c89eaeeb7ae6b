"""A client that knows only the documented API: sign in, search, rate, get explained picks, sign out."""
import pytest
import yaml
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


def test_a_client_signs_in_searches_rates_and_gets_explained_recommendations():
    make_user("ana@example.com")
    make_movie("The Godfather", year=1972, genres=["Crime"], directors=["Francis Ford Coppola"])
    popular = make_movie("Chinatown", year=1974, genres=["Crime"])
    for _ in range(2):
        make_rating(make_user(), popular, 4.5)
    client = APIClient()

    docs = yaml.safe_load(client.get("/api/v1/schema/").content)
    token_path = next(path for path, item in docs["paths"].items() if item.get("post", {}).get("operationId") == "auth_login")
    token = client.post(token_path, {"email": "ana@example.com", "password": DEFAULT_PASSWORD}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    found = client.get("/api/v1/movies/", {"q": "godfather"}).json()["results"]
    rated = client.post("/api/v1/me/ratings/", {"movie": found[0]["id"], "score": 4.5}, format="json")
    picks = client.get("/api/v1/recommendations/", {"row": "top", "n": 5}).json()

    assert rated.status_code == 201
    assert [item["movie"]["title"] for item in picks["results"]] == ["Chinatown"]
    assert picks["results"][0]["explanation"]
    assert client.delete(token_path).status_code == 204
    assert client.get("/api/v1/me/ratings/").status_code == 401


def test_the_api_health_check_is_the_sites(client):
    api = client.get("/api/v1/health/")
    site = client.get("/healthz")

    assert api.status_code == 200
    assert api.json() == site.json()
    assert api.json()["checks"]["database"] == "up"
