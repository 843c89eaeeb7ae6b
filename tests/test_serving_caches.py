"""What the serving caches must never change: a film just rated or hidden leaves every cached row at
once, and remembered cards, API items, URLs and decades are what the uncached code gives."""
import pytest
from django.template import Context, Template
from django.urls import reverse, set_script_prefix
from rest_framework.test import APIClient

from catalog.models import Movie, id_url
from catalog.selectors import catalogue_decades
from catalog.serializers import MovieListSerializer
from catalog.services import hide_movie
from tests.factories import make_movie, make_rating, make_user
from tests.test_home_rows import published_model, rows_of, western_fan  # noqa: F401 (fixtures)


def _row_films(client) -> set[int]:
    return {pk for films in rows_of(client.get(reverse("catalog:home"))).values() for pk in films}


@pytest.mark.django_db(transaction=True)
def test_cached_home_rows_lose_a_film_as_soon_as_it_is_rated_or_hidden(western_fan):
    first = rows_of(western_fan.get(reverse("catalog:home")))
    assert rows_of(western_fan.get(reverse("catalog:home"))) == first  # the second view reads the cache

    shown_later = [pk for rows in list(first.values())[1:] for pk in rows]
    rated, hidden = Movie.objects.get(pk=shown_later[0]), Movie.objects.get(pk=shown_later[-1])
    make_rating(western_fan.fan, rated, 2.0)
    hide_movie(user=western_fan.fan, movie=hidden)

    films = _row_films(western_fan)
    assert rated.pk not in films and hidden.pk not in films


@pytest.mark.django_db(transaction=True)
def test_cached_api_genre_and_because_rows_lose_a_film_as_soon_as_it_is_rated(western_fan):
    api = APIClient()
    api.force_authenticate(western_fan.fan)
    for query in ({"row": "genre", "genre": "western", "n": 5}, {"row": "because", "n": 5}):
        before = [item["movie"]["id"] for item in api.get("/api/v1/recommendations/", query).json()["results"]]
        assert before == [item["movie"]["id"] for item in api.get("/api/v1/recommendations/", query).json()["results"]]
        make_rating(western_fan.fan, Movie.objects.get(pk=before[0]), 5.0)
        after = [item["movie"]["id"] for item in api.get("/api/v1/recommendations/", query).json()["results"]]
        assert before[0] not in after, query


@pytest.mark.django_db
def test_id_urls_are_what_reverse_gives_under_any_script_prefix():
    try:
        for prefix in ("/", "/movierec/"):
            set_script_prefix(prefix)
            for pk in (1, 42, 2_000_000):
                assert id_url("catalog:movie", pk) == reverse("catalog:movie", args=[pk])
                assert id_url("catalog:poster", pk) == reverse("catalog:poster", args=[pk])
    finally:
        set_script_prefix("/")


@pytest.mark.django_db
def test_decades_are_listed_once_each_newest_first():
    for year in (1955, 1959, 1990, 2001, None):
        make_movie(year=year)
    assert catalogue_decades() == [2000, 1990, 1950]


@pytest.mark.django_db
def test_a_remembered_card_and_api_item_show_the_films_current_average(settings):
    settings.DEBUG = False
    movie = make_movie("Remembered", genres=["Drama"])
    card = Template("{% load catalog_extras %}{% movie_card movie %}")

    def shown():
        fresh = Movie.objects.prefetch_related("genres").get(pk=movie.pk)
        return card.render(Context({"movie": fresh})), MovieListSerializer(fresh).data

    assert "No ratings yet" in shown()[0]
    assert shown()[1]["rating_count"] == 0
    make_rating(make_user(), movie, 4.5)
    html, item = shown()
    assert "(1)" in html and "4.5" in html
    assert (item["rating_count"], item["rating_mean"]) == (1, 4.5)



@pytest.mark.django_db
def test_the_kept_guest_shelves_and_chips_are_what_the_uncached_page_gives(client, settings):
    from django.core.cache import cache as shared_cache

    for n, year in enumerate((1955, 1990, 2001)):
        movie = make_movie(f"Film {n}", year=year, genres=["Drama", "Western"][: n % 2 + 1])
        for stars in (4.0, 3.5)[: n + 1]:
            make_rating(make_user(), movie, stars)
    settings.DEBUG = True  # nothing kept
    fresh = client.get("/").content
    settings.DEBUG = False
    assert client.get("/").content == fresh
    assert shared_cache.get("catalog:html:guest-shelves:12:/") is not None
    assert client.get("/").content == fresh, "served from the kept parts"
    make_movie("Added later", year=1920)
    assert b"1920s" not in client.get("/").content, "kept for a minute"
    shared_cache.clear()
    assert b"1920s" in client.get("/").content
