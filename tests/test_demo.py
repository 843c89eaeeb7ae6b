"""The shipped demo catalogue: valid data files, a deterministic rating simulation, an idempotent load."""
import datetime as dt
import io
import json

import numpy as np
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction

from catalog.demo.catalogue import MOVIELENS_GENRES, DemoDataError, load_films
from catalog.demo.simulation import simulate
from catalog.models import HALF_STARS, Actor, CastMember, Director, Genre, Movie, Rating

User = get_user_model()
NOW = dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def films():
    return load_films()


@pytest.fixture(scope="module")
def demo_loaded(django_db_setup, django_db_blocker):
    """The demo catalogue loaded once for this module, rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = io.StringIO()
        call_command("load_demo", "--no-progress", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def _counts() -> dict:
    return {
        "movies": Movie.objects.count(),
        "genres": Genre.objects.count(),
        "directors": Director.objects.count(),
        "actors": Actor.objects.count(),
        "cast": CastMember.objects.count(),
        "movie genres": Movie.genres.through.objects.count(),
        "movie directors": Movie.directors.through.objects.count(),
        "users": User.objects.count(),
        "ratings": Rating.objects.count(),
        "score sum": sum(Rating.objects.values_list("score", flat=True)),
    }


# --- the data files ---------------------------------------------------------------------------

def test_data_files_hold_over_300_distinct_films_from_every_decade_and_genre(films):
    assert len(films) >= 320
    assert len({f.key for f in films}) == len(films)
    assert all(1920 <= f.year <= dt.date.today().year for f in films)
    decades = {f.year // 10 * 10 for f in films}
    assert set(range(1920, 2030, 10)) <= decades
    genres = {g for f in films for g in f.genres}
    assert genres == set(MOVIELENS_GENRES)


def test_every_film_in_the_data_files_has_director_three_to_five_actors_and_a_synopsis(films):
    for film in films:
        assert film.genres and film.directors, film.title
        assert 3 <= len(film.cast) <= 5, film.title
        assert film.synopsis.endswith((".", "!", "?")) and len(film.synopsis) < 300, film.title


def test_malformed_data_file_is_rejected_naming_file_line_and_reason(tmp_path):
    good = {"title": "A Film", "year": 1999, "genres": ["Drama"], "directors": ["Someone"],
            "cast": ["A", "B", "C"], "synopsis": "Something happens."}
    cases = {
        "not json {": "invalid JSON",
        json.dumps({**good, "genres": ["Space Opera"]}): "unknown genre(s) Space Opera",
        json.dumps({**good, "year": 1850}): "year must be",
        json.dumps({**good, "cast": ["A", "B"]}): "cast must list 3 to 5 actors",
        json.dumps({k: v for k, v in good.items() if k != "synopsis"}): "missing field(s) synopsis",
        json.dumps(good): "A Film (1999) already appears at films.jsonl, line 1",
    }
    for bad_line, reason in cases.items():
        (tmp_path / "films.jsonl").write_text(json.dumps(good) + "\n" + bad_line + "\n", encoding="utf-8")
        with pytest.raises(DemoDataError) as error:
            load_films(tmp_path)
        assert str(error.value).startswith("films.jsonl, line 2: ")
        assert reason in str(error.value)


# --- the simulation ---------------------------------------------------------------------------

def test_simulation_is_deterministic_for_the_same_seed(films):
    first, second = simulate(films, now=NOW), simulate(films, now=NOW)
    for name in ("user_index", "film_index", "score", "timestamp"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.users == second.users
    other_seed = simulate(films, now=NOW, seed=7)
    assert not np.array_equal(first.score[:1000], other_seed.score[:1000])


def test_simulated_ratings_look_like_real_half_star_ratings(films):
    ratings = simulate(films, now=NOW)
    assert len(ratings.users) >= 600
    assert set(np.unique(ratings.score)) <= set(HALF_STARS)
    assert 3.3 <= ratings.score.mean() <= 3.8
    assert 0.8 <= ratings.score.std() <= 1.2
    per_user = np.bincount(ratings.user_index)
    assert per_user.min() >= 15 and per_user.max() <= 150
    assert np.median(per_user) < per_user.mean()  # a long tail of heavy raters
    days_ago = (NOW.timestamp() - ratings.timestamp) / 86400
    assert days_ago.min() >= 0 and days_ago.max() <= 3 * 365 + 1
    assert (days_ago <= 30).sum() > 1000  # a "trending" window has data


def test_simulated_tastes_are_learnable_beyond_popularity(films):
    """An item-to-item recommender fit on 80% of the ratings finds the held-out liked films clearly
    better than recommending the most popular films: the simulated tastes carry real structure."""
    ratings = simulate(films, now=NOW)
    held_out = np.random.default_rng(0).random(len(ratings)) < 0.2
    n_users, n_films = len(ratings.users), len(films)
    seen = np.zeros((n_users, n_films))
    seen[ratings.user_index[~held_out], ratings.film_index[~held_out]] = 1.0
    liked = np.zeros((n_users, n_films), dtype=bool)
    keep = held_out & (ratings.score >= 4.0)
    liked[ratings.user_index[keep], ratings.film_index[keep]] = True

    def hit_rate_at_10(scores):
        scores = np.where(seen > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :10]
        hits = np.take_along_axis(liked, top, axis=1).sum(axis=1)
        return hits.sum() / np.minimum(liked.sum(axis=1), 10).sum()

    popularity = np.tile(seen.sum(axis=0), (n_users, 1))
    norms = np.sqrt(seen.sum(axis=0)) + 1e-9
    similarity = (seen.T @ seen) / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0)
    assert hit_rate_at_10(seen @ similarity) > 1.25 * hit_rate_at_10(popularity)


# --- the load_demo command --------------------------------------------------------------------

@pytest.mark.django_db
def test_load_demo_loads_over_300_movies_and_500_simulated_users(demo_loaded, films):
    assert Movie.objects.count() == len(films) >= 300
    assert User.objects.filter(source=User.Source.SIMULATED).count() >= 500
    assert Rating.objects.count() > 20_000
    assert "simulated" in demo_loaded and f"{len(films)} movies" in demo_loaded


@pytest.mark.django_db
def test_every_demo_movie_has_genres_a_director_and_its_cast_in_billing_order(demo_loaded, films):
    genres, directors, cast = {}, {}, {}
    for title, year, name in Movie.genres.through.objects.values_list("movie__title", "movie__year", "genre__name"):
        genres.setdefault((title, year), set()).add(name)
    for title, year, name in Movie.directors.through.objects.values_list(
        "movie__title", "movie__year", "director__name"
    ):
        directors.setdefault((title, year), set()).add(name)
    for title, year, name in CastMember.objects.order_by("movie_id", "order").values_list(
        "movie__title", "movie__year", "actor__name"
    ):
        cast.setdefault((title, year), []).append(name)
    for film in films:
        assert genres[film.key] == set(film.genres), film.title
        assert directors[film.key] == set(film.directors), film.title
        assert 3 <= len(cast[film.key]) <= 5
        assert cast[film.key] == list(film.cast), film.title


@pytest.mark.django_db
def test_the_godfather_and_amelie_are_in_the_demo_catalogue(demo_loaded):
    godfather = Movie.objects.get(title="The Godfather", year=1972)
    assert list(godfather.directors.values_list("name", flat=True)) == ["Francis Ford Coppola"]
    assert godfather.cast.first().actor.name == "Marlon Brando"
    assert godfather.rating_count > 0 and 0.5 <= godfather.rating_mean <= 5.0
    amelie = Movie.objects.get(title="Amélie", year=2001)
    assert "Le Fabuleux Destin d'Amélie Poulain" in amelie.alternative_titles.splitlines()
    assert "amelie" in amelie.search_title.splitlines()
    assert Actor.objects.get(name="Audrey Tautou").search_name == "audrey tautou"


@pytest.mark.django_db
def test_simulated_users_are_labelled_simulated_and_cannot_log_in(demo_loaded):
    demo_users = User.objects.filter(username__startswith="demo-")
    assert demo_users.count() >= 500
    for user in demo_users:
        assert user.source == User.Source.SIMULATED
        assert user.external_id == user.username
        assert user.email == ""
        assert not user.has_usable_password()
    assert authenticate(username="demo-1", password="") is None


@pytest.mark.django_db
def test_every_loaded_rating_is_a_half_star_with_its_simulated_timestamp(demo_loaded):
    assert set(Rating.objects.values_list("score", flat=True).distinct()) <= set(HALF_STARS)
    stamps = Rating.objects.values_list("created_at", "updated_at")
    assert all(created == updated for created, updated in stamps)
    today = dt.datetime.now(dt.timezone.utc)
    oldest = min(created for created, _ in stamps)
    assert dt.timedelta(days=300) < today - oldest < dt.timedelta(days=3 * 365 + 2)
    assert Rating.objects.filter(created_at__gte=today - dt.timedelta(days=30)).count() > 1000


@pytest.mark.django_db
def test_loading_again_changes_nothing_and_keeps_other_data(demo_loaded):
    site_user = User.objects.create_user(email="fan@example.com", password="a-Long-test-passw0rd")
    godfather = Movie.objects.get(title="The Godfather", year=1972)
    Rating.objects.create(user=site_user, movie=godfather, score=5.0, created_at=NOW, updated_at=NOW)
    own_movie = Movie.objects.create(title="A Home Movie", year=2020)
    before = _counts()

    out = io.StringIO()
    call_command("load_demo", "--no-progress", stdout=out)

    assert _counts() == before
    assert "(0 new)" in out.getvalue() and out.getvalue().count("(0 new)") == 4
    assert Rating.objects.get(user=site_user, movie=godfather).score == 5.0
    assert Movie.objects.filter(pk=own_movie.pk).exists()
    assert Movie.objects.filter(title="The Godfather", year=1972).count() == 1
