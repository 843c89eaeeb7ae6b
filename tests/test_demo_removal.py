"""Real data is never mixed with the demo catalogue: an import into a database holding it is refused,
and remove_demo takes out exactly the demo (simulated users, their ratings, demo-only films)."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from catalog.models import Actor, Director, Genre, Movie, Rating, Tag, WatchlistEntry
from tests.factories import make_movie, make_rating, make_user
from tests.test_import_movielens import csv_release

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def demo():
    call_command("load_demo", "--no-progress", "--users", "30", stdout=io.StringIO())


def simulated_users():
    return User.objects.filter(source=User.Source.SIMULATED)


def test_importing_movielens_into_the_demo_is_refused_and_says_how_to_remove_it(tmp_path, demo):
    movies_before = Movie.objects.count()
    with pytest.raises(CommandError) as error:
        call_command("import_movielens", str(csv_release(tmp_path / "ml")), "--no-progress", stdout=io.StringIO())
    message = str(error.value)
    assert "This database holds the demo catalogue (439 demo films, 30 simulated users" in message
    assert "python manage.py remove_demo" in message and "--remove-demo" in message
    assert Movie.objects.count() == movies_before and not Movie.objects.exclude(movielens_id=None).exists()


def test_remove_demo_removes_simulated_users_their_ratings_and_demo_only_films_and_nothing_else(demo):
    fan = make_user()
    godfather = Movie.objects.get(title="The Godfather", year=1972)
    amelie = Movie.objects.get(title__startswith="Amélie")
    make_rating(fan, godfather, 5.0)  # a site user's rating of a demo film: the film and the rating stay
    WatchlistEntry.objects.create(user=fan, movie=amelie)
    own = make_movie("A Home Movie", year=2020, directors=["Francis Ford Coppola"])  # staff-made: stays
    real = Movie.objects.create(title="Heat", year=1995, movielens_id=6, imdb_id="tt0113277")  # real data: stays
    demo_heat = Movie.objects.filter(title="Heat", year=1995).exclude(pk=real.pk)
    genres = Genre.objects.count()

    out = io.StringIO()
    call_command("remove_demo", stdout=out)

    assert not simulated_users().exists()
    assert list(Rating.objects.values_list("user_id", "movie_id", "score")) == [(fan.pk, godfather.pk, 5.0)]
    assert set(Movie.objects.values_list("pk", flat=True)) == {godfather.pk, amelie.pk, own.pk, real.pk}
    assert not demo_heat.exists()
    assert WatchlistEntry.objects.filter(user=fan, movie=amelie).exists()
    godfather.refresh_from_db()
    assert (godfather.rating_count, godfather.rating_mean) == (1, 5.0)  # statistics without the simulated ratings
    assert Director.objects.filter(name="Francis Ford Coppola").exists()  # still credited (The Godfather, own film)
    assert not Actor.objects.exclude(movies__isnull=False).exists()  # no demo actor left without a film
    assert Genre.objects.count() == genres
    assert "Removed the demo catalogue: 30 simulated users" in out.getvalue()
    assert "Kept 2 demo films that site users rated, listed or tagged" in out.getvalue()


def test_import_with_remove_demo_removes_it_in_the_same_transaction(tmp_path, demo):
    out = io.StringIO()
    call_command("import_movielens", str(csv_release(tmp_path / "ml")), "--no-progress", "--remove-demo", stdout=out)
    assert "Removed the demo catalogue" in out.getvalue()
    assert not simulated_users().exists() and User.objects.filter(source=User.Source.MOVIELENS).count() == 3
    assert sorted(Movie.objects.values_list("title", flat=True)) == [
        "Babylon 5", "La Cité des enfants perdus", "The Matrix", "Toy Story"]
    assert not Tag.objects.exclude(user__source=User.Source.MOVIELENS).exists()


def test_a_rejected_release_with_remove_demo_leaves_the_demo_where_it_was(tmp_path, demo):
    broken = csv_release(tmp_path / "ml", **{"ratings.csv": "userId,movieId,rating,timestamp\n1,1,7.0,964982703\n"})
    users, movies = simulated_users().count(), Movie.objects.count()
    with pytest.raises(CommandError, match=r"ratings.csv, line 2: rating 7.0 outside the scale"):
        call_command("import_movielens", str(broken), "--no-progress", "--remove-demo", stdout=io.StringIO())
    assert (simulated_users().count(), Movie.objects.count()) == (users, movies)


def test_remove_demo_on_a_database_without_it_changes_nothing():
    movie = make_movie("Heat", year=1995)
    out = io.StringIO()
    call_command("remove_demo", stdout=out)
    assert "holds no demo catalogue" in out.getvalue()
    assert Movie.objects.filter(pk=movie.pk).exists()


def test_the_one_command_start_refuses_a_database_holding_the_demo(tmp_path, demo):
    with pytest.raises(CommandError, match="This database holds the demo catalogue"):
        call_command("bootstrap_site", "--data", str(csv_release(tmp_path / "ml")), "--no-fit", stdout=io.StringIO())
    assert not Movie.objects.exclude(movielens_id=None).exists()


def test_the_one_command_start_imports_a_release_once_and_never_loads_the_demo(tmp_path):
    release = str(csv_release(tmp_path / "ml"))
    out = io.StringIO()
    call_command("bootstrap_site", "--data", release, "--no-fit", stdout=out)
    assert Movie.objects.count() == 4 and not simulated_users().exists()
    call_command("bootstrap_site", "--data", release, "--no-fit", stdout=out)
    assert "already holds 4 MovieLens films: not importing" in out.getvalue() and Movie.objects.count() == 4
    with pytest.raises(CommandError, match="--metadata enriches a MovieLens release: give it with --data"):
        call_command("bootstrap_site", "--metadata", release, "--no-fit", stdout=out)
