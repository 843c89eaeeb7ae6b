"""Trending measures momentum: many people, rating well, more than the film usually gets."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog.models import Rating
from catalog.services import refresh_movie_stats
from recommendations import tasks, trending
from recommendations.selectors import trending_entries
from tests.factories import make_movie

pytestmark = pytest.mark.django_db
RECENT = "Well liked among recent releases"


def people(n, prefix="p"):
    User = get_user_model()
    start = User.objects.count()
    return [User.objects.create_user(email=f"{prefix}{start + i}@example.com") for i in range(n)]


def rate(users, movie, score, days_ago=1.0):
    when = timezone.now() - timedelta(days=days_ago)
    Rating.objects.bulk_create([Rating(user=u, movie=m, score=score, created_at=when, updated_at=when)
                                for u in users for m in ([movie] if not isinstance(movie, list) else movie)])


@pytest.fixture
def history():
    """A catalogue rated long ago, and two recent releases people liked then."""
    old = [make_movie(f"Old film {i}", year=1990 + i) for i in range(10)]
    new = [make_movie("New and loved", year=2023), make_movie("New and fine", year=2022)]
    crowd = people(30, "crowd")
    rate(crowd, old, 4.0, days_ago=400)
    rate(crowd[:12], new[0], 4.5, days_ago=300)
    rate(crowd[:3], new[1], 4.0, days_ago=300)
    refresh_movie_stats()
    return {"old": old, "new": new}


def shown(n=12):
    return [(movie.title, why) for movie, why in trending_entries(n=n)]


def test_a_handful_of_people_rating_many_films_cannot_fill_trending(history):
    handful = people(4, "handful")
    binge = [make_movie(f"Binge {i}", year=1980 + i) for i in range(40)]
    rate(handful, binge, 5.0)
    refresh_movie_stats()

    entries = shown()

    assert not any(title.startswith("Binge") for title, _ in entries)
    assert [title for title, _ in entries] == ["New and loved", "New and fine"]  # the fallback
    assert all(why == RECENT for _, why in entries)


def test_five_people_who_like_a_film_make_it_rise_and_a_film_they_rate_one_star_does_not(history):
    liked, hated = make_movie("Liked by many", year=1970), make_movie("Hated by many", year=2023)
    group = people(6, "group")
    rate(group, liked, 4.5)
    rate(group, hated, 1.0)
    refresh_movie_stats()

    entries = shown()

    assert entries[0] == ("Liked by many", "Rising: 6 people rated it in the last 14 days, more and better than usual")
    assert "Hated by many" not in [title for title, _ in entries]


def test_momentum_is_measured_against_the_films_usual_rate(history):
    classic, newcomer = make_movie("Steady classic", year=1960), make_movie("Sudden favourite", year=1961)
    regulars = people(90, "regular")
    for day in range(90):  # one 5-star rating every other day for half a year: seven a fortnight
        rate([regulars[day]], classic, 5.0, days_ago=16 + day * 2)
    rate(people(6, "now"), classic, 5.0)  # six this fortnight: fewer than usual
    rate(people(6, "new"), newcomer, 4.5)  # six this fortnight, never rated before
    refresh_movie_stats()

    titles = [title for title, why in shown() if why.startswith("Rising")]

    assert titles == ["Sudden favourite"]


def test_trending_is_precomputed_by_a_periodic_task_and_pages_read_it(history, django_assert_max_num_queries):
    assert PeriodicTask.objects.get(task="recommendations.refresh_trending").enabled
    tasks.refresh_trending()
    before = shown()

    rising = make_movie("Rising star", year=1999)
    rate(people(8, "fans"), rising, 5.0)
    with django_assert_max_num_queries(1):  # the cached list and one query for its films
        assert shown() == before
    tasks.refresh_trending()
    assert shown()[0][0] == "Rising star"


def test_well_liked_recent_releases_come_best_first(history):
    entries = trending.compute(n=5)
    assert [e.reason for e in entries] == [trending.RECENT, trending.RECENT]
    assert [e.movie_id for e in entries] == [history["new"][0].pk, history["new"][1].pk]
