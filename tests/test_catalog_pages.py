"""The catalogue pages a visitor browses: home, browse, movie, people, posters, lists."""
import pytest
from django.urls import reverse

from catalog.models import NotInterested, WatchlistEntry
from catalog.selectors import top_rated_movies
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(client):
    member = make_user("member@example.com")
    client.force_login(member)
    client.member = member
    return client


def test_top_rated_uses_a_bayesian_average_not_the_raw_mean():
    raters = [make_user() for _ in range(30)]
    one_perfect_vote = make_movie("One Perfect Vote")
    make_rating(raters[0], one_perfect_vote, 5.0)
    widely_loved = make_movie("Widely Loved")
    for rater in raters:
        make_rating(rater, widely_loved, 4.5)
    mediocre = make_movie("Mediocre")
    for rater in raters[:10]:
        make_rating(rater, mediocre, 2.0)
    assert [movie.title for movie in top_rated_movies(3)] == ["Widely Loved", "One Perfect Vote", "Mediocre"]


def test_home_shows_popular_and_top_rated_movies_to_anonymous_visitors(client):
    movie = make_movie("The Godfather", year=1972)
    make_rating(make_user(), movie, 5.0)
    response = client.get(reverse("catalog:home"))
    assert response.status_code == 200
    assert "Popular" in response.text and "Top rated" in response.text
    assert "The Godfather" in response.text
    assert "For you" not in response.text  # rendered only when the engine fills `for_you`


def test_simulated_demo_ratings_are_labelled(client):
    movie = make_movie("Heat")
    make_rating(make_user(source="simulated", external_id="sim-1"), movie, 4.0)
    assert "simulated demo ratings" in client.get(movie.get_absolute_url()).text
    assert "simulated demo ratings" in client.get(reverse("catalog:home")).text


def test_real_ratings_only_carry_no_simulated_label(client):
    movie = make_movie("Heat")
    make_rating(make_user(), movie, 4.0)
    assert "simulated" not in client.get(movie.get_absolute_url()).text


def test_movie_page_shows_everything_about_the_movie(client):
    movie = make_movie(
        "The Godfather", year=1972, genres=["Crime", "Drama"], directors=["Francis Ford Coppola"],
        actors=["Marlon Brando", "Al Pacino", "James Caan"], synopsis="A crime family's reluctant heir.", runtime=175,
    )
    make_rating(make_user(), movie, 4.0)
    make_rating(make_user(), movie, 5.0)
    page = client.get(movie.get_absolute_url()).text
    for expected in ["The Godfather", "1972", "Crime", "Drama", "Francis Ford Coppola", "A crime family", "175 min", "4.5", "2</span> ratings"]:
        assert expected in page
    assert page.index("Marlon Brando") < page.index("Al Pacino") < page.index("James Caan")
    assert reverse("catalog:poster", args=[movie.pk]) in page


def test_a_missing_movie_is_a_404(client):
    assert client.get(reverse("catalog:movie", args=[424242])).status_code == 404
    assert client.get(reverse("catalog:poster", args=[424242])).status_code == 404


def test_placeholder_poster_is_an_svg_with_title_year_and_cache_headers(client):
    movie = make_movie("Amélie & <Friends>", year=2001, genres=["Romance"])
    response = client.get(reverse("catalog:poster", args=[movie.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=86400" in response["Cache-Control"]
    body = response.content.decode()
    assert body.startswith("<svg") and "Amélie &amp; &lt;Friends&gt;" in body and "2001" in body
    assert client.get(reverse("catalog:poster", args=[movie.pk]), HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_a_movie_with_a_poster_url_falls_back_to_the_placeholder_if_it_fails(client):
    movie = make_movie("Heat", poster_url="https://posters.example/heat.jpg")
    page = client.get(movie.get_absolute_url()).text
    assert 'src="https://posters.example/heat.jpg"' in page
    assert f'data-fallback-src="{reverse("catalog:poster", args=[movie.pk])}"' in page


def test_browse_filters_by_genre_and_decade_sorts_and_paginates(client):
    for year in range(1990, 2020):
        make_movie(f"Drama {year}", year=year, genres=["Drama"])
    make_movie("Comedy 1995", year=1995, genres=["Comedy"])
    response = client.get(reverse("catalog:browse"), {"genre": "drama", "decade": "1990", "sort": "newest"})
    assert response.status_code == 200
    page = response.text
    assert "10 movies" in page and "Comedy 1995" not in page and "Drama 2000" not in page
    assert page.index("Drama 1999") < page.index("Drama 1990")
    first = client.get(reverse("catalog:browse"), {"sort": "title"}).text
    assert "Page 1 of 2" in first
    assert "Drama 2019" in client.get(reverse("catalog:browse"), {"sort": "title", "page": 2}).text


def test_browse_with_an_unknown_genre_answers_400_with_the_form_error(client):
    response = client.get(reverse("catalog:browse"), {"genre": "no-such-genre"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.text


def test_genre_page_redirects_to_browse_filtered_by_genre(client):
    make_movie("Heat", genres=["Crime"])
    response = client.get(reverse("catalog:genre", args=["crime"]))
    assert response.status_code == 302 and "genre=crime" in response["Location"]


def test_director_and_actor_pages_list_their_filmography(client):
    heat = make_movie("Heat", year=1995, directors=["Michael Mann"], actors=["Al Pacino"])
    godfather = make_movie("The Godfather", year=1972, actors=["Al Pacino"])
    director = heat.directors.get()
    actor = heat.cast.get().actor
    assert "Heat" in client.get(director.get_absolute_url()).text
    page = client.get(actor.get_absolute_url()).text
    assert page.index("Heat") < page.index("The Godfather")
    assert "2 films" in page
    assert godfather.get_absolute_url() in page


def test_watchlist_add_list_and_remove(member_client):
    movie = make_movie("Heat")
    member_client.post(reverse("catalog:watchlist_toggle", args=[movie.pk]), {"action": "add"})
    assert WatchlistEntry.objects.filter(user=member_client.member, movie=movie).exists()
    assert "Heat" in member_client.get(reverse("catalog:watchlist")).text
    assert "✓ On your watchlist" in member_client.get(movie.get_absolute_url()).text
    response = member_client.post(
        reverse("catalog:watchlist_toggle", args=[movie.pk]), {"action": "remove"}, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {"on_watchlist": False}
    assert not WatchlistEntry.objects.exists()


def test_not_interested_hides_and_restores(member_client, django_capture_on_commit_callbacks):
    movie = make_movie("Heat")
    with django_capture_on_commit_callbacks() as callbacks:
        member_client.post(reverse("catalog:not_interested_toggle", args=[movie.pk]), {"action": "add"})
    assert len(callbacks) == 1  # the recommender hears about it
    assert "Heat" in member_client.get(reverse("catalog:not_interested")).text
    member_client.post(reverse("catalog:not_interested_toggle", args=[movie.pk]), {"action": "remove"})
    assert not NotInterested.objects.exists()


@pytest.mark.parametrize("url_name", ["catalog:my_ratings", "catalog:watchlist", "catalog:not_interested"])
def test_personal_lists_need_a_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_anonymous_watchlist_post_goes_to_login(client):
    movie = make_movie("Heat")
    response = client.post(reverse("catalog:watchlist_toggle", args=[movie.pk]), {"action": "add"})
    assert response["Location"] == f"{reverse('account_login')}?next={movie.get_absolute_url()}"
    assert not WatchlistEntry.objects.exists()


def test_signed_in_users_get_a_top_picks_row_on_the_home_page(member_client):
    movie = make_movie("Heat", year=1995)
    for _ in range(3):
        make_rating(make_user(), movie, 4.5)
    page = member_client.get(reverse("catalog:home")).text
    assert "Top picks for you" in page
    assert page.index("Top picks for you") < page.index("Heat")


def test_a_film_cards_show_its_year_first_two_genres_in_name_order_and_current_average(member_client):
    from catalog.models import Genre

    heat = make_movie("Heat", year=1995, directors=["Michael Mann"])
    thief = make_movie("Thief", year=1981, genres=["Thriller", "Crime", "Drama"], directors=["Michael Mann"])
    make_rating(make_user(), thief, 4.0)
    make_rating(member_client.member, thief, 3.0)

    def thief_card(path, after=""):
        page = member_client.get(path).text
        start = page.index('<h3 class="card__title">Thief</h3>', page.index(after))
        return page[start:page.index("</article>", start)]

    card = thief_card(heat.get_absolute_url(), after="More from Michael Mann")
    assert "1981 · Crime · Drama</p>" in card and "Thriller" not in card
    assert "★</span> 3.5" in card and "(2)" in card and "You: 3" in card

    Genre.objects.filter(name="Crime").delete()  # a genre gone since: the card shows the next ones
    make_rating(make_user(), thief, 5.0)
    card = thief_card(reverse("catalog:search") + "?q=thief")
    assert "1981 · Drama · Thriller</p>" in card
    assert "★</span> 4.0" in card and "(3)" in card

    thief.genres.add(Genre.objects.create(name="Noir", slug="noir"))  # a genre added since shows at once
    assert "1981 · Drama · Noir</p>" in thief_card(reverse("catalog:search") + "?q=thief")
