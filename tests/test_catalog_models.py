"""Database-level rules of the catalogue: rating bounds and half steps, one rating per user and movie."""
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Actor, Movie, Rating, WatchlistEntry
from tests.factories import make_movie, make_user

pytestmark = pytest.mark.django_db


def insert_rating(user, movie, score):
    now = timezone.now()
    return Rating.objects.create(user=user, movie=movie, score=score, created_at=now, updated_at=now)


@pytest.mark.parametrize("score", [0.0, 0.25, 3.3, 5.5, 7.0, -1.0])
def test_the_database_refuses_scores_that_are_not_half_stars_from_half_to_five(score):
    user, movie = make_user(), make_movie()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rating(user, movie, score)
    assert not Rating.objects.exists()


@pytest.mark.parametrize("score", [0.5, 1.0, 2.5, 5.0])
def test_the_database_accepts_every_half_star(score):
    assert insert_rating(make_user(), make_movie(), score).pk


def test_a_user_rates_a_movie_at_most_once():
    user, movie = make_user(), make_movie()
    insert_rating(user, movie, 3.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rating(user, movie, 4.0)


def test_a_movie_is_on_a_watchlist_at_most_once():
    user, movie = make_user(), make_movie()
    WatchlistEntry.objects.create(user=user, movie=movie)
    with pytest.raises(IntegrityError), transaction.atomic():
        WatchlistEntry.objects.create(user=user, movie=movie)


def test_search_fields_are_normalised_on_save():
    movie = make_movie("Amélie", alternative_titles="Le Fabuleux Destin d'Amélie Poulain")
    assert Movie.objects.get(pk=movie.pk).search_title == "amelie\nle fabuleux destin d amelie poulain"
    assert Actor.objects.create(name="Penélope Cruz").search_name == "penelope cruz"
