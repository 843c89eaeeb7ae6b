"""The catalogue admin: only staff reach it; staff add a movie with its cast and find it in search."""
import pytest
from django.urls import reverse

from catalog.models import Actor, CastMember, Director, Movie, Rating
from catalog.search import search_movies
from tests.factories import make_genre, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("url_name", ["admin:index", "admin:catalog_movie_changelist", "admin:catalog_movie_add"])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url_name", ["admin:index", "admin:catalog_movie_changelist"])
def test_signed_in_non_staff_users_cannot_reach_the_admin(client, url_name):
    client.force_login(make_user("member@example.com"))
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_see_the_movie_list_with_search_and_filters(staff_client):
    make_movie("The Godfather", year=1972, genres=["Crime"])
    make_movie("Toy Story", year=1995, genres=["Animation"])
    changelist = reverse("admin:catalog_movie_changelist")
    assert "The Godfather" in staff_client.get(changelist, {"q": "godfather"}).text
    assert "Toy Story" not in staff_client.get(changelist, {"q": "godfather"}).text
    by_decade = staff_client.get(changelist, {"decade": "1990"}).text
    assert "Toy Story" in by_decade and "The Godfather" not in by_decade
    assert staff_client.get(changelist, {"q": "tt0068646"}).status_code == 200


def test_staff_add_a_movie_with_cast_in_admin_and_find_it_in_search(staff_client):
    drama = make_genre("Drama")
    director = Director.objects.create(name="Céline Sciamma")
    first, second = Actor.objects.create(name="Noémie Merlant"), Actor.objects.create(name="Adèle Haenel")
    search_movies("anything")  # the fuzzy index is built before the movie exists
    response = staff_client.post(
        reverse("admin:catalog_movie_add"),
        {
            "title": "Portrait of a Lady on Fire",
            "alternative_titles": "Portrait de la jeune fille en feu",
            "year": "2019",
            "synopsis": "A painter and her subject fall in love on a Breton island.",
            "genres": [drama.pk],
            "directors": [director.pk],
            "cast-TOTAL_FORMS": "3",
            "cast-INITIAL_FORMS": "0",
            "cast-MIN_NUM_FORMS": "0",
            "cast-MAX_NUM_FORMS": "1000",
            "cast-0-actor": first.pk,
            "cast-0-order": "0",
            "cast-1-actor": second.pk,
            "cast-1-order": "1",
            "cast-2-actor": "",
            "cast-2-order": "0",  # an untouched extra row, as the browser sends it
        },
    )
    assert response.status_code == 302, (response.context["adminform"].form.errors, response.context["inline_admin_formsets"][0].formset.errors)
    movie = Movie.objects.get(title="Portrait of a Lady on Fire")
    assert [member.actor.name for member in CastMember.objects.filter(movie=movie)] == ["Noémie Merlant", "Adèle Haenel"]
    assert list(movie.directors.all()) == [director]
    assert search_movies("portrait of a lady on fire")[0] == movie
    assert movie in search_movies("portait lady fire")  # typo
    assert movie in search_movies("jeune fille en feu")  # alternative title
    assert movie in search_movies("sciamma")  # director
    assert movie in search_movies("noemie merlant")  # actor, without accents


def test_movie_edit_page_shows_a_poster_preview_even_without_a_poster_url(staff_client):
    movie = make_movie("Posterless")
    page = staff_client.get(reverse("admin:catalog_movie_change", args=[movie.pk])).text
    assert reverse("catalog:poster", args=[movie.pk]) in page


def test_admin_rejects_an_invalid_rating_and_keeps_statistics_current(staff_client):
    movie, member = make_movie("Heat"), make_user("member@example.com")
    add_url = reverse("admin:catalog_rating_add")
    response = staff_client.post(add_url, {"user": member.pk, "movie": movie.pk, "score": "7"})
    assert response.status_code == 200
    assert not Rating.objects.exists()
    response = staff_client.post(add_url, {"user": member.pk, "movie": movie.pk, "score": "4.5"})
    assert response.status_code == 302
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (1, 4.5)


def test_deleting_ratings_in_admin_updates_movie_statistics(staff_client):
    movie = make_movie("Heat")
    rating = make_rating(make_user(), movie, 5.0)
    make_rating(make_user(), movie, 3.0)
    staff_client.post(reverse("admin:catalog_rating_delete", args=[rating.pk]), {"post": "yes"})
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (1, 3.0)
