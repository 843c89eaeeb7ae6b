"""Onboarding: favourite genres are stored, the movies offered are informative and diverse,
answers are saved, and a guest's ratings survive sign-up and log-in."""
from collections import Counter
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from catalog.models import Movie, Rating
from catalog.services import refresh_movie_stats
from recommendations.models import GenrePreference
from recommendations.onboarding import informative_movies, needs_onboarding
from tests.factories import DEFAULT_PASSWORD, make_genre, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated_catalogue():
    """15 very popular dramas of the 1990s, and fewer-rated films of other genres and decades."""
    raters = [get_user_model().objects.create_user(email=f"rater{i}@example.com") for i in range(12)]
    dramas = [make_movie(f"Drama {i}", year=1990 + i % 10, genres=["Drama"]) for i in range(15)]
    others = [
        make_movie("Alien", year=1979, genres=["Horror", "Sci-Fi"]),
        make_movie("Airplane!", year=1980, genres=["Comedy"]),
        make_movie("Toy Story", year=1995, genres=["Animation", "Comedy"]),
        make_movie("Heat", year=1995, genres=["Crime", "Action"]),
        make_movie("Casablanca", year=1942, genres=["Romance"]),
        make_movie("The Thing", year=1982, genres=["Horror"]),
    ]
    now = timezone.now()
    ratings = []
    for movie_number, movie in enumerate(dramas + others):
        how_many = 12 if movie in dramas else 6
        for rater_number, rater in enumerate(raters[:how_many]):
            score = 1.0 + (rater_number + movie_number) % 9 / 2  # a spread of opinions
            ratings.append(Rating(user=rater, movie=movie, score=score, created_at=now, updated_at=now))
    Rating.objects.bulk_create(ratings)
    refresh_movie_stats()
    return {"dramas": dramas, "others": others}


def test_offered_movies_spread_over_genres_and_decades_not_the_top_of_one_genre(rated_catalogue):
    most_rated = list(Movie.objects.order_by("-rating_count", "pk")[:8])
    assert {genre.name for movie in most_rated for genre in movie.genres.all()} == {"Drama"}  # the trap

    offered = informative_movies(n=8)

    genres = Counter(genre.name for movie in offered for genre in movie.genres.all())
    assert len(offered) == 8
    assert genres["Drama"] <= 3
    assert len(genres) >= 5
    assert len({movie.decade for movie in offered}) >= 3


def test_offered_movies_exclude_rated_ones_and_favour_picked_genres(rated_catalogue):
    user = make_user()
    alien = rated_catalogue["others"][0]
    make_rating(user, alien, 4.0)
    horror = make_genre("Horror")

    offered = informative_movies(user=user, n=4, favourite_genre_ids=[horror.pk])

    assert alien not in offered
    assert "The Thing" in [movie.title for movie in offered]


def test_genres_step_stores_the_picked_genres(client, rated_catalogue):
    user = make_user()
    client.force_login(user)
    comedy, horror, drama = make_genre("Comedy"), make_genre("Horror"), make_genre("Drama")
    GenrePreference.objects.create(user=user, genre=drama)

    page = client.get(reverse("onboarding:genres"))
    assert "Comedy" in page.content.decode()
    response = client.post(reverse("onboarding:genres"), {"genres": [comedy.pk, horror.pk]})

    assert response.status_code == 302 and response["Location"] == reverse("onboarding:rate")
    assert set(GenrePreference.objects.filter(user=user).values_list("genre__name", flat=True)) == {"Comedy", "Horror"}


def test_onboarding_requires_login_for_genres(client):
    response = client.get(reverse("onboarding:genres"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_rating_step_saves_answers_and_finishing_goes_home(client, rated_catalogue):
    user = make_user()
    client.force_login(user)
    page = client.get(reverse("onboarding:rate"))
    offered = [movie.pk for movie in page.context["movies"]]
    assert len(offered) == 12

    first, second, third = offered[:3]
    response = client.post(
        reverse("onboarding:rate"),
        {"movies": offered, f"answer_{first}": "4.5", f"answer_{second}": "unseen", f"answer_{third}": "skip",
         "finish": ""},
    )

    assert response.status_code == 302 and response["Location"] == reverse("catalog:home")
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {first: 4.5}
    next_batch = [movie.pk for movie in client.get(reverse("onboarding:rate")).context["movies"]]
    assert first not in next_batch and second not in next_batch  # rated / haven't seen: not asked again


def test_an_invalid_score_is_a_clear_error_and_saves_nothing(client, rated_catalogue):
    user = make_user()
    client.force_login(user)
    movie, other = rated_catalogue["others"][:2]
    response = client.post(
        reverse("onboarding:rate"),
        {"movies": [movie.pk, other.pk], f"answer_{movie.pk}": "4", f"answer_{other.pk}": "4.2"},
    )
    assert response.status_code == 400
    assert "not a valid rating" in response.content.decode()
    assert not Rating.objects.filter(user=user).exists()


def guest_rates(client, movies_and_scores):
    answers = {f"answer_{movie.pk}": score for movie, score in movies_and_scores}
    response = client.post(reverse("onboarding:rate"), {"movies": [m.pk for m, _ in movies_and_scores], **answers})
    assert response.status_code == 302


def test_guest_ratings_are_kept_at_signup(client, rated_catalogue, mailoutbox):
    alien, airplane = rated_catalogue["others"][:2]
    guest_rates(client, [(alien, "5"), (airplane, "2.5")])
    assert not Rating.objects.filter(movie__in=[alien, airplane], score__in=[5.0, 2.5]).exclude(
        user__email__startswith="rater"
    ).exists()

    client.post(
        reverse("account_signup"),
        {"email": "newcomer@example.com", "password1": DEFAULT_PASSWORD, "password2": DEFAULT_PASSWORD},
    )

    ratings = Rating.objects.filter(user__email="newcomer@example.com")
    assert dict(ratings.values_list("movie_id", "score")) == {alien.pk: 5.0, airplane.pk: 2.5}


def test_guest_ratings_are_kept_at_login_and_win_over_older_ones(client, rated_catalogue):
    user = make_user("returning@example.com")
    alien, airplane = rated_catalogue["others"][:2]
    make_rating(user, alien, 1.0)
    guest_rates(client, [(alien, "4")])

    response = client.post(reverse("account_login"), {"login": "returning@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert dict(Rating.objects.filter(user=user).values_list("movie_id", "score")) == {alien.pk: 4.0}
    assert "guest_ratings" not in client.session


def test_rating_page_query_count_is_fixed(client, rated_catalogue, django_assert_max_num_queries):
    user = make_user()
    client.force_login(user)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("onboarding:rate"))
    assert len(response.context["movies"]) == 12


def test_only_users_without_genres_or_ratings_need_onboarding(rated_catalogue):
    fresh, rated, with_genres = make_user(), make_user(), make_user()
    make_rating(rated, rated_catalogue["others"][0], 3.0)
    GenrePreference.objects.create(user=with_genres, genre=make_genre("Horror"))
    assert [needs_onboarding(user) for user in (fresh, rated, with_genres)] == [True, False, False]



def test_first_login_without_ratings_or_genres_starts_the_onboarding(client, db):
    make_user(email="new@example.com")

    response = client.post("/accounts/login/", {"login": "new@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("onboarding:start")


def test_login_of_a_user_who_already_rated_goes_home(client, db):
    user = make_user(email="old@example.com")
    make_rating(user, make_movie(title="Heat", year=1995), 4.5)

    response = client.post("/accounts/login/", {"login": "old@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url == "/"


# --- Crafted input: a clear 400, nothing written (issue #14) ----------------------------------

HUGE = "9" * 5000  # int() refuses strings past 4,300 digits
BEYOND_64_BITS = str(2**63)  # one past the largest id a database column holds
NOT_ASCII_DIGIT = "²"  # str.isdigit() says yes, int() says no


@pytest.mark.parametrize("value", [NOT_ASCII_DIGIT, HUGE, BEYOND_64_BITS, "-1", "0"])
def test_a_crafted_genre_id_is_a_clear_error_and_changes_nothing(client, rated_catalogue, value):
    user = make_user()
    client.force_login(user)
    drama = make_genre("Drama")
    GenrePreference.objects.create(user=user, genre=drama)

    response = client.post(reverse("onboarding:genres"), {"genres": [str(make_genre("Horror").pk), value]})

    assert response.status_code == 400
    assert "Pick genres from the list" in response.content.decode()
    assert list(GenrePreference.objects.filter(user=user).values_list("genre__name", flat=True)) == ["Drama"]


@pytest.mark.parametrize("value", [NOT_ASCII_DIGIT, HUGE, BEYOND_64_BITS])
@pytest.mark.parametrize("signed_in", [True, False])
def test_a_crafted_movie_id_is_a_clear_error_and_saves_nothing(client, rated_catalogue, value, signed_in):
    user = make_user()
    if signed_in:
        client.force_login(user)
    alien = rated_catalogue["others"][0]

    form = urlencode({"movies": [str(alien.pk), value], f"answer_{alien.pk}": "4.5", f"answer_{value}": "unseen"},
                     doseq=True)
    response = client.post(reverse("onboarding:rate"), form, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert "not in the catalogue" in response.content.decode()
    assert not Rating.objects.filter(user=user).exists()
    assert "guest_ratings" not in client.session and "onboarding_dismissed" not in client.session
    assert client.get(reverse("onboarding:rate")).status_code == 200


def test_a_guest_who_says_unseen_for_a_movie_that_does_not_exist_can_still_rate(client, rated_catalogue):
    alien = rated_catalogue["others"][0]
    missing = str(Movie.objects.order_by("-pk").first().pk + 1000)

    response = client.post(reverse("onboarding:rate"), {
        "movies": [str(alien.pk), missing], f"answer_{alien.pk}": "unseen", f"answer_{missing}": "unseen"})

    assert response.status_code == 302
    assert client.session["onboarding_dismissed"] == [alien.pk]  # only films that exist are remembered
    assert client.get(reverse("onboarding:rate")).status_code == 200


# --- Picked genres ------------------------------------------------------------------------------


@pytest.fixture
def genre_catalogue():
    """Romance and comedy films over five decades, and more-rated films of other genres."""
    raters = [get_user_model().objects.create_user(email=f"fan{i}@example.com") for i in range(12)]
    films = []
    for decade in (1950, 1970, 1980, 1990, 2000):
        for k in range(3):
            films.append((make_movie(f"Love story {decade}-{k}", year=decade + k, genres=["Romance"]), 5))
            films.append((make_movie(f"Laughs {decade}-{k}", year=decade + k, genres=["Comedy"]), 5))
            films.append((make_movie(f"Shootout {decade}-{k}", year=decade + k, genres=["Action", "Crime"]), 12))
            films.append((make_movie(f"Scream {decade}-{k}", year=decade + k, genres=["Horror", "Thriller"]), 12))
    now = timezone.now()
    Rating.objects.bulk_create([
        Rating(user=rater, movie=movie, score=1.0 + (r + m) % 9 / 2, created_at=now, updated_at=now)
        for m, (movie, how_many) in enumerate(films) for r, rater in enumerate(raters[:how_many])])
    refresh_movie_stats()


def test_most_films_offered_come_from_the_picked_genres_spread_over_decades(client, genre_catalogue):
    user = make_user()
    client.force_login(user)
    picked = [make_genre("Romance").pk, make_genre("Comedy").pk]
    client.post(reverse("onboarding:genres"), {"genres": picked})

    offered = client.get(reverse("onboarding:rate")).context["movies"]

    in_picked = [m for m in offered if {g.name for g in m.genres.all()} & {"Romance", "Comedy"}]
    assert len(offered) == 12
    assert len(in_picked) >= 8, [m.title for m in offered]
    assert len({m.decade for m in in_picked}) >= 4
    assert {g.name for m in in_picked for g in m.genres.all()} >= {"Romance", "Comedy"}
