"""The taste profile computes the right figures from a user's ratings and draws them as inline SVG."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.taste import (
    favourite_actors,
    favourite_directors,
    genre_averages,
    rating_histogram,
    ratings_against_everyone,
)
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def taste():
    user = make_user()
    others = [get_user_model().objects.create_user(email=f"other{i}@example.com") for i in range(2)]
    inception = make_movie("Inception", year=2010, genres=["Drama"], directors=["Christopher Nolan"],
                           actors=["Ann Lead", "Bob Second", "C", "D", "E", "Late Billing"])
    prestige = make_movie("The Prestige", year=2006, genres=["Drama", "Comedy"], directors=["Christopher Nolan"],
                          actors=["Ann Lead", "W", "X", "Y", "Z", "Late Billing"])
    flop = make_movie("Flop", year=1999, genres=["Comedy"], directors=["Someone Else"], actors=["Bob Second"])
    scary = make_movie("Scary", year=1985, genres=["Horror"])
    for movie, score in [(inception, 5.0), (prestige, 4.0), (flop, 1.0), (scary, 2.5)]:
        make_rating(user, movie, score)
    for movie, scores in [(inception, (2.0, 3.0)), (prestige, (4.0, 4.0)), (flop, (4.0, 5.0))]:
        for other, score in zip(others, scores):
            make_rating(other, movie, score)
    return user, {"inception": inception, "prestige": prestige, "flop": flop, "scary": scary}


def test_histogram_counts_each_half_star(taste):
    user, _ = taste
    histogram = {figure.label: figure.value for figure in rating_histogram(user)}
    assert histogram == {"0.5": 0, "1": 1, "1.5": 0, "2": 0, "2.5": 1, "3": 0, "3.5": 0, "4": 1, "4.5": 0, "5": 1}


def test_genre_averages_are_per_genre_means_best_first(taste):
    user, _ = taste
    assert [(f.label, f.value, f.count) for f in genre_averages(user)] == [
        ("Drama", 4.5, 2), ("Comedy", 2.5, 2), ("Horror", 2.5, 1),
    ]


def test_movies_rated_far_from_everyone_else_leave_out_the_users_own_rating(taste):
    user, movies = taste
    contrasts = ratings_against_everyone(user)
    assert [(f.label, f.value, f.reference) for f in contrasts["above"]] == [(str(movies["inception"]), 2.5, 2.5)]
    assert [(f.label, f.value, f.reference) for f in contrasts["below"]] == [(str(movies["flop"]), -3.5, 4.5)]


def test_favourite_people_need_two_rated_movies_and_only_top_billing_counts(taste):
    user, _ = taste
    assert [(f.label, f.value, f.count) for f in favourite_directors(user)] == [("Christopher Nolan", 4.5, 2)]
    assert [(f.label, f.value, f.count) for f in favourite_actors(user)] == [("Ann Lead", 4.5, 2), ("Bob Second", 3.0, 2)]


def test_taste_page_renders_its_charts_in_a_fixed_number_of_queries(client, taste, django_assert_max_num_queries):
    user, movies = taste
    client.force_login(user)
    with django_assert_max_num_queries(9):
        response = client.get(reverse("taste:profile"))
    page = response.content.decode()
    assert response.status_code == 200
    for chart in ("chart-histogram", "chart-genres", "chart-contrasts", "chart-directors", "chart-actors"):
        assert chart in page
    assert page.count("<svg") == 5
    assert "Christopher Nolan" in page and "Ann Lead" in page and "Inception" in page
    assert "http://" not in page.split("<main", 1)[1].replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_taste_page_of_a_new_user_invites_them_to_rate(client):
    client.force_login(make_user())
    response = client.get(reverse("taste:profile"))
    assert response.status_code == 200
    assert "You have not rated anything yet" in response.content.decode()
