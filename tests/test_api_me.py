"""The signed-in user's own data over the REST API: ratings, watchlist, not-interested, profile."""
import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import issue_api_token
from catalog.models import NotInterested, Rating, WatchlistEntry
from tests.factories import DEFAULT_PASSWORD, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


def signed_in(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(user=user)[1]}")
    return client


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def client(user):
    return signed_in(user)


@pytest.fixture
def movies():
    return [make_movie(f"Film {i}", year=1990 + i) for i in range(3)]


# --- Ratings ---------------------------------------------------------------------------------------


def test_rating_a_movie_stores_it_and_updates_the_movie_statistics(client, user, movies):
    response = client.post("/api/v1/me/ratings/", {"movie": movies[0].pk, "score": 4.5}, format="json")

    assert response.status_code == 201
    assert response.json()["score"] == 4.5
    assert response.json()["movie"]["id"] == movies[0].pk
    assert Rating.objects.get(user=user, movie=movies[0]).score == 4.5
    movies[0].refresh_from_db()
    assert (movies[0].rating_count, movies[0].rating_mean) == (1, 4.5)


def test_rating_again_changes_the_rating(client, user, movies):
    client.post("/api/v1/me/ratings/", {"movie": movies[0].pk, "score": 2}, format="json")

    response = client.put(f"/api/v1/me/ratings/{movies[0].pk}/", {"score": 3.5}, format="json")

    assert response.status_code == 200
    assert Rating.objects.get(user=user, movie=movies[0]).score == 3.5
    assert Rating.objects.filter(user=user).count() == 1


def test_put_on_an_unrated_movie_creates_the_rating(client, user, movies):
    response = client.put(f"/api/v1/me/ratings/{movies[1].pk}/", {"score": 1}, format="json")

    assert response.status_code == 201
    assert Rating.objects.get(user=user, movie=movies[1]).score == 1.0


@pytest.mark.parametrize("score", [0, 0.25, 5.5, 3.3, -1, "four", None])
def test_a_score_that_is_not_a_half_star_is_refused_and_nothing_is_stored(client, user, movies, score):
    response = client.post("/api/v1/me/ratings/", {"movie": movies[0].pk, "score": score}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "score" in error["fields"]
    assert not Rating.objects.filter(user=user).exists()


def test_rating_an_unknown_movie_names_the_movie_field(client, movies):
    response = client.post("/api/v1/me/ratings/", {"movie": 987654, "score": 3}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["movie"]


def test_my_ratings_list_most_recently_changed_first(client, user, movies):
    for movie, score in zip(movies, [3, 4, 5]):
        client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": score}, format="json")

    body = client.get("/api/v1/me/ratings/").json()

    assert body["count"] == 3
    assert [(r["movie"]["title"], r["score"]) for r in body["results"]] == [
        ("Film 2", 5.0),
        ("Film 1", 4.0),
        ("Film 0", 3.0),
    ]
    assert client.get(f"/api/v1/me/ratings/{movies[1].pk}/").json()["score"] == 4.0


def test_removing_a_rating_deletes_it_and_a_second_removal_is_a_404(client, user, movies):
    make_rating(user, movies[0], 4.0)

    assert client.delete(f"/api/v1/me/ratings/{movies[0].pk}/").status_code == 204
    assert not Rating.objects.filter(user=user).exists()
    movies[0].refresh_from_db()
    assert movies[0].rating_count == 0
    second = client.delete(f"/api/v1/me/ratings/{movies[0].pk}/")
    assert second.status_code == 404
    assert second.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/me/ratings/{movies[0].pk}/").status_code == 404


def test_bulk_rating_stores_every_rating(client, user, movies):
    payload = {"ratings": [{"movie": m.pk, "score": s} for m, s in zip(movies, [1, 2.5, 5])]}

    response = client.post("/api/v1/me/ratings/bulk/", payload, format="json")

    assert response.status_code == 201
    assert response.json() == {"rated": 3}
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {
        movies[0].pk: 1.0,
        movies[1].pk: 2.5,
        movies[2].pk: 5.0,
    }


def test_bulk_rating_with_one_bad_score_stores_nothing_and_names_the_item(client, user, movies):
    make_rating(user, movies[0], 4.0)
    payload = {"ratings": [{"movie": movies[0].pk, "score": 1}, {"movie": movies[1].pk, "score": 2.7}]}

    response = client.post("/api/v1/me/ratings/bulk/", payload, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["ratings[1].score"]
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {movies[0].pk: 4.0}


def test_bulk_rating_with_an_unknown_movie_names_the_item(client, user, movies):
    payload = {"ratings": [{"movie": movies[0].pk, "score": 1}, {"movie": 987654, "score": 2}]}

    response = client.post("/api/v1/me/ratings/bulk/", payload, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["ratings[1].movie"]
    assert not Rating.objects.filter(user=user).exists()


def test_bulk_rating_refuses_an_empty_list(client):
    response = client.post("/api/v1/me/ratings/bulk/", {"ratings": []}, format="json")

    assert response.status_code == 400
    assert "ratings" in response.json()["error"]["fields"]


# --- Lists -----------------------------------------------------------------------------------------


def test_watchlist_add_list_and_remove(client, user, movies):
    assert client.post("/api/v1/me/watchlist/", {"movie": movies[0].pk}, format="json").status_code == 201
    assert client.post("/api/v1/me/watchlist/", {"movie": movies[0].pk}, format="json").status_code == 200
    client.post("/api/v1/me/watchlist/", {"movie": movies[1].pk}, format="json")

    listed = client.get("/api/v1/me/watchlist/").json()["results"]
    assert [entry["movie"]["id"] for entry in listed] == [movies[1].pk, movies[0].pk]

    assert client.delete(f"/api/v1/me/watchlist/{movies[0].pk}/").status_code == 204
    assert list(WatchlistEntry.objects.filter(user=user).values_list("movie_id", flat=True)) == [movies[1].pk]
    assert client.delete(f"/api/v1/me/watchlist/{movies[0].pk}/").status_code == 404


def test_not_interested_hides_a_movie_and_can_be_undone(client, user, movies):
    assert client.post("/api/v1/me/not-interested/", {"movie": movies[2].pk}, format="json").status_code == 201
    assert [e["movie"]["id"] for e in client.get("/api/v1/me/not-interested/").json()["results"]] == [movies[2].pk]

    assert client.delete(f"/api/v1/me/not-interested/{movies[2].pk}/").status_code == 204
    assert not NotInterested.objects.filter(user=user).exists()


@pytest.mark.parametrize("path", ["/api/v1/me/watchlist/", "/api/v1/me/not-interested/"])
def test_adding_to_a_list_answers_with_the_same_absolute_poster_url_as_listing_it(client, movies, path):
    added = client.post(path, {"movie": movies[0].pk}, format="json").json()
    listed = client.get(path).json()["results"][0]

    assert added["movie"]["poster_url"].startswith("http://testserver/")
    assert added["movie"]["poster_url"] == listed["movie"]["poster_url"]


def test_adding_an_unknown_movie_to_a_list_is_refused(client):
    response = client.post("/api/v1/me/watchlist/", {"movie": 424242}, format="json")

    assert response.status_code == 400
    assert "movie" in response.json()["error"]["fields"]


# --- Profile, export, deletion -------------------------------------------------------------------------


def test_profile_shows_my_account(client, user):
    body = client.get("/api/v1/me/").json()

    assert body["email"] == user.email
    assert body["birth_year"] is None


def test_profile_update_changes_only_demographics(client, user):
    response = client.patch(
        "/api/v1/me/", {"birth_year": 1985, "country": "France", "email": "other@example.com"}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.birth_year, user.country) == (1985, "France")
    assert user.email != "other@example.com"


def test_profile_update_with_an_impossible_birth_year_changes_nothing(client, user):
    response = client.patch("/api/v1/me/", {"birth_year": 1850, "country": "Peru"}, format="json")

    assert response.status_code == 400
    assert "birth_year" in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert (user.birth_year, user.country) == (None, "")


def test_export_holds_my_profile_ratings_and_lists(client, user, movies):
    make_rating(user, movies[0], 4.0)
    client.post("/api/v1/me/watchlist/", {"movie": movies[1].pk}, format="json")

    body = client.get("/api/v1/me/export/").json()

    assert body["profile"]["email"] == user.email
    assert [(r["movie"]["id"], r["score"]) for r in body["ratings"]] == [(movies[0].pk, 4.0)]
    assert [e["movie"]["id"] for e in body["watchlist"]] == [movies[1].pk]
    assert body["not_interested"] == []


def test_deleting_my_account_needs_my_password(client, user, movies):
    make_rating(user, movies[0], 4.0)

    refused = client.post("/api/v1/me/delete/", {"confirmation": "not my password"}, format="json")
    assert refused.status_code == 400
    assert "confirmation" in refused.json()["error"]["fields"]
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post("/api/v1/me/delete/", {"confirmation": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    movies[0].refresh_from_db()
    assert movies[0].rating_count == 0
    assert client.get("/api/v1/me/").status_code == 401
