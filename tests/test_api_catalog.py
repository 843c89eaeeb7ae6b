"""The catalogue over the REST API: genres, movies (list, filters, search, detail), people."""
import pytest
from rest_framework.test import APIClient

from accounts.services import issue_api_token
from catalog.models import Movie
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def signed_in(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(user=user)[1]}")
    return client


@pytest.fixture
def catalogue():
    godfather = make_movie(
        "The Godfather",
        year=1972,
        genres=["Crime", "Drama"],
        directors=["Francis Ford Coppola"],
        actors=["Marlon Brando", "Al Pacino", "James Caan"],
        alternative_titles="Der Pate\nLe Parrain",
    )
    conversation = make_movie("The Conversation", year=1974, genres=["Drama"], directors=["Francis Ford Coppola"])
    amelie = make_movie("Amélie", year=2001, genres=["Comedy"], directors=["Jean-Pierre Jeunet"])
    raters = [make_user() for _ in range(3)]
    for rater in raters:
        make_rating(rater, godfather, 5.0)
    make_rating(raters[0], conversation, 4.0)
    return {"godfather": godfather, "conversation": conversation, "amelie": amelie}


def titles(response) -> list[str]:
    return [movie["title"] for movie in response.json()["results"]]


def test_genres_are_listed_by_name(api, catalogue):
    response = api.get("/api/v1/genres/")

    assert response.status_code == 200
    assert [genre["slug"] for genre in response.json()] == ["comedy", "crime", "drama"]


def test_movie_list_is_paginated_and_most_rated_first_by_default(api, catalogue):
    response = api.get("/api/v1/movies/", {"page_size": 2})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3
    assert titles(response) == ["The Godfather", "The Conversation"]
    assert body["next"] is not None
    assert api.get(body["next"]).json()["results"][0]["title"] == "Amélie"


def test_movie_list_filters_by_genre_and_year_range(api, catalogue):
    assert titles(api.get("/api/v1/movies/", {"genre": "drama", "year_from": 1973})) == ["The Conversation"]
    assert titles(api.get("/api/v1/movies/", {"year_to": 1973})) == ["The Godfather"]


def test_movie_list_orders_by_title_or_newest(api, catalogue):
    assert titles(api.get("/api/v1/movies/", {"sort": "title"})) == ["Amélie", "The Conversation", "The Godfather"]
    assert titles(api.get("/api/v1/movies/", {"sort": "newest"}))[0] == "Amélie"


def test_search_forgives_typos_and_accents_and_finds_alternative_titles(api, catalogue):
    assert titles(api.get("/api/v1/movies/", {"q": "godfater"}))[0] == "The Godfather"
    assert titles(api.get("/api/v1/movies/", {"q": "amelie"})) == ["Amélie"]
    assert titles(api.get("/api/v1/movies/", {"q": "parrain"})) == ["The Godfather"]


def test_search_finds_a_directors_movies_and_respects_filters(api, catalogue):
    found = titles(api.get("/api/v1/movies/", {"q": "coppola"}))
    assert set(found) == {"The Godfather", "The Conversation"}
    assert titles(api.get("/api/v1/movies/", {"q": "coppola", "year_from": 1973})) == ["The Conversation"]


def test_bad_filters_are_rejected_with_the_error_body(api, catalogue):
    response = api.get("/api/v1/movies/", {"year_from": "nineteen", "sort": "random"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"year_from", "sort"}
    assert "year_from" in error["message"]


def test_an_overlong_search_is_a_400_naming_the_query(api, catalogue):
    response = api.get("/api/v1/movies/", {"q": "x" * 201})

    assert response.status_code == 400
    assert "q" in response.json()["error"]["fields"]


def test_movie_detail_has_genres_directors_cast_in_billing_order_and_stats(api, catalogue):
    response = api.get(f"/api/v1/movies/{catalogue['godfather'].pk}/")

    body = response.json()
    assert response.status_code == 200
    assert [genre["name"] for genre in body["genres"]] == ["Crime", "Drama"]
    assert [person["name"] for person in body["directors"]] == ["Francis Ford Coppola"]
    assert [member["name"] for member in body["cast"]] == ["Marlon Brando", "Al Pacino", "James Caan"]
    assert body["alternative_titles"] == ["Der Pate", "Le Parrain"]
    assert body["rating_count"] == 3 and body["rating_mean"] == 5.0
    assert body["my_rating"] is None


def test_movie_detail_shows_my_rating_and_list_flags_when_signed_in(catalogue):
    user = make_user()
    make_rating(user, catalogue["amelie"], 3.5)
    client = signed_in(user)
    client.post("/api/v1/me/watchlist/", {"movie": catalogue["amelie"].pk}, format="json")

    body = client.get(f"/api/v1/movies/{catalogue['amelie'].pk}/").json()

    assert body["my_rating"] == 3.5
    assert body["on_watchlist"] is True
    assert body["not_interested"] is False
    listed = client.get("/api/v1/movies/", {"sort": "title"}).json()["results"]
    assert [movie["my_rating"] for movie in listed] == [3.5, None, None]


def test_unknown_movie_is_a_404_with_the_error_body(api, catalogue):
    response = api.get("/api/v1/movies/999999/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["fields"] == {}


def test_an_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_director_page_lists_their_movies_newest_first(api, catalogue):
    director = catalogue["godfather"].directors.get()

    body = api.get(f"/api/v1/directors/{director.pk}/").json()

    assert body["name"] == "Francis Ford Coppola"
    assert [movie["title"] for movie in body["filmography"]] == ["The Conversation", "The Godfather"]


def test_actor_list_and_actor_filmography(api, catalogue):
    actors = api.get("/api/v1/actors/").json()["results"]
    assert [actor["name"] for actor in actors] == ["Al Pacino", "James Caan", "Marlon Brando"]

    body = api.get(f"/api/v1/actors/{actors[0]['id']}/").json()
    assert [movie["title"] for movie in body["filmography"]] == ["The Godfather"]


def test_people_search_finds_directors_and_actors(api, catalogue):
    directors = api.get("/api/v1/people/", {"q": "coppola"}).json()
    actors = api.get("/api/v1/people/", {"q": "marlon brandon"}).json()

    assert [(p["name"], p["role"], p["film_count"]) for p in directors] == [("Francis Ford Coppola", "Director", 2)]
    assert actors[0]["name"] == "Marlon Brando" and actors[0]["role"] == "Actor"
    assert api.get("/api/v1/people/").status_code == 400


def test_staff_can_add_and_change_a_movie(catalogue):
    staff = make_user(is_staff=True)
    client = signed_in(staff)

    created = client.post(
        "/api/v1/movies/", {"title": "Chinatown", "year": 1974, "genres": ["drama"]}, format="json"
    )
    assert created.status_code == 201
    movie = Movie.objects.get(pk=created.json()["id"])
    assert movie.title == "Chinatown" and [g.slug for g in movie.genres.all()] == ["drama"]

    changed = client.patch(f"/api/v1/movies/{movie.pk}/", {"runtime": 130}, format="json")
    assert changed.status_code == 200
    movie.refresh_from_db()
    assert movie.runtime == 130

    assert client.delete(f"/api/v1/movies/{movie.pk}/").status_code == 204
    assert not Movie.objects.filter(pk=movie.pk).exists()


def test_staff_movie_input_is_validated(catalogue):
    client = signed_in(make_user(is_staff=True))

    response = client.post("/api/v1/movies/", {"title": "", "year": 3000, "genres": ["no-such-genre"]}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"title", "year", "genres"}


def test_the_catalogue_is_read_only_for_users_who_are_not_staff(catalogue):
    client = signed_in(make_user())
    movie = catalogue["godfather"]

    assert client.post("/api/v1/movies/", {"title": "Mine"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/movies/{movie.pk}/", {"title": "Mine"}, format="json").status_code == 403
    assert client.put(f"/api/v1/movies/{movie.pk}/", {"title": "Mine"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/movies/{movie.pk}/").status_code == 403
    assert APIClient().post("/api/v1/movies/", {"title": "Mine"}, format="json").status_code == 401
    assert APIClient().delete(f"/api/v1/movies/{movie.pk}/").status_code == 401
    movie.refresh_from_db()
    assert movie.title == "The Godfather"
    assert not Movie.objects.filter(title="Mine").exists()


def test_movies_without_an_imdb_id_do_not_collide(catalogue):
    client = signed_in(make_user(is_staff=True))

    first = client.post("/api/v1/movies/", {"title": "One", "imdb_id": ""}, format="json")
    second = client.post("/api/v1/movies/", {"title": "Two", "imdb_id": ""}, format="json")
    duplicate = client.post("/api/v1/movies/", {"title": "Three", "imdb_id": "tt0068646"}, format="json")
    again = client.post("/api/v1/movies/", {"title": "Four", "imdb_id": "tt0068646"}, format="json")

    assert (first.status_code, second.status_code, duplicate.status_code) == (201, 201, 201)
    assert first.json()["imdb_id"] is None
    assert again.status_code == 400 and "imdb_id" in again.json()["error"]["fields"]
