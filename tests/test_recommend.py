"""The engine on a small synthetic catalogue: versions, top-N, cold start, feedback, similar, explanations."""
import re

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db.models import Avg
from django.utils import timezone

from catalog.models import NotInterested, Rating
from catalog.services import refresh_movie_stats
from recommendations import rerank, selectors
from recommendations.feedback import user_feedback_changed
from recommendations.models import ModelVersion, UserVector
from recommendations.selectors import (
    current_model,
    expire_current_model,
    predicted_rating,
    recommend_for_user,
    similar_movies,
)
from recommendations.services import fit_model, publish_model
from tests.factories import make_movie, make_user

GENRES = ["Sci-Fi", "Romance", "Horror", "Comedy"]
SMALL = {"components": 16, "epochs": 15, "stars_iterations": 4, "ease_lambda": 20.0, "ease_min_count": 1, "threads": 1}
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_model_check():
    # Each test has its own database: forget the model the previous test published.
    expire_current_model()


def rate(user, movie, score, when=None):
    when = when or timezone.now()
    return Rating.objects.create(user=user, movie=movie, score=score, created_at=when, updated_at=when)


@pytest.fixture
def catalogue(settings, tmp_path):
    """Four genres of ten films, each genre with its own director; 32 users who each love one genre."""
    settings.MEDIA_ROOT = tmp_path
    rng = np.random.default_rng(7)
    films = {
        g: [make_movie(f"{g} film {i}", year=1980 + 3 * i, genres=[g], directors=[f"{g} Director"],
                       actors=[f"{g} Star", f"Actor {g} {i}"], synopsis=f"A {g.lower()} story number {i}.")
            for i in range(10)]
        for g in GENRES
    }
    fans = {g: [] for g in GENRES}
    for n in range(32):
        genre = GENRES[n % 4]
        user = make_user()
        fans[genre].append(user)
        for movie in rng.choice(films[genre], size=7, replace=False):
            rate(user, movie, float(rng.choice([4.0, 4.5, 5.0])))
        for other in [g for g in GENRES if g != genre]:
            rate(user, rng.choice(films[other]), 2.0)
    refresh_movie_stats()
    return films, fans


def fit_and_publish():
    version = fit_model(hyperparameters=SMALL, progress=False)
    publish_model(version)
    return version


def genres_of(recommendations):
    return [r.movie.genres.get().name for r in recommendations]


def test_a_fit_is_saved_as_a_version_and_published_versions_replace_each_other(catalogue):
    assert current_model() is None
    first = fit_model(hyperparameters=SMALL, progress=False)
    assert first.status == ModelVersion.Status.READY
    assert default_storage.exists(first.artifact)
    assert (first.n_users, first.n_items, first.n_interactions) == (32, 40, 32 * 10)
    assert first.train_seconds > 0
    assert "holdout_served_ndcg@10" in first.metrics and "holdout_popularity_ndcg@10" in first.metrics
    assert current_model() is None  # ready is not published

    publish_model(first)
    assert current_model().version_id == first.pk
    second = fit_model(hyperparameters=SMALL, progress=False)
    publish_model(second)
    assert current_model().version_id == second.pk
    assert list(ModelVersion.objects.filter(is_current=True)) == [second]
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.READY


def test_without_a_model_the_list_is_the_most_popular_films_not_yet_rated(catalogue):
    films, fans = catalogue
    user = fans["Horror"][0]
    recs = recommend_for_user(user, n=5)
    rated = set(Rating.objects.filter(user=user).values_list("movie_id", flat=True))
    assert len(recs) == 5 and not rated & {r.movie.pk for r in recs}
    counts = [r.movie.rating_count for r in recs]
    assert counts == sorted(counts, reverse=True)


def test_a_published_model_whose_artifact_is_missing_keeps_the_site_serving(catalogue, client, caplog):
    films, fans = catalogue
    user = fans["Horror"][0]
    served = fit_and_publish()
    assert current_model().version_id == served.pk
    lost = fit_and_publish()
    default_storage.delete(lost.artifact)  # lost with a volume, or a MEDIA_ROOT not shared by every machine
    expire_current_model()

    client.force_login(user)
    page = client.get("/")

    assert page.status_code == 200
    assert current_model().version_id == served.pk, "the model already loaded keeps serving"
    assert f"Model version {lost.pk} cannot be loaded" in caplog.text
    fresh_process = selectors._CurrentModel()
    assert fresh_process.get() is None, "a process with nothing loaded serves popular films"


def test_fans_get_their_genre_and_never_what_they_rated_or_hid(catalogue):
    films, fans = catalogue
    fit_and_publish()
    user = fans["Sci-Fi"][0]
    hidden = next(m for m in films["Sci-Fi"] if not Rating.objects.filter(user=user, movie=m).exists())
    NotInterested.objects.create(user=user, movie=hidden)
    recs = recommend_for_user(user, n=10)
    rated = set(Rating.objects.filter(user=user).values_list("movie_id", flat=True))
    shown = {r.movie.pk for r in recs}
    assert not shown & rated and hidden.pk not in shown
    assert genres_of(recs[:2]) == ["Sci-Fi", "Sci-Fi"]
    assert all(0.5 <= r.predicted_stars <= 5 for r in recs)


def test_genre_and_year_filters_are_honoured(catalogue):
    fit_and_publish()
    user = catalogue[1]["Sci-Fi"][0]
    recs = recommend_for_user(user, n=10, genre="Comedy", year_from=1983, year_to=1995)
    assert recs and set(genres_of(recs)) == {"Comedy"}
    assert all(1983 <= r.movie.year <= 1995 for r in recs)


def test_a_new_user_with_five_ratings_gets_recommendations_that_follow_them(catalogue):
    films, _ = catalogue
    fit_and_publish()
    newcomer = make_user()
    for movie in films["Horror"][:5]:
        rate(newcomer, movie, 5.0)
    recs = recommend_for_user(newcomer, n=5)
    assert genres_of(recs).count("Horror") >= 4


def test_a_film_without_ratings_is_recommended_to_users_whose_tastes_match_its_features(catalogue):
    films, fans = catalogue
    newcomer_film = make_movie("Brand new sci-fi", year=2024, genres=["Sci-Fi"], directors=["Sci-Fi Director"],
                               actors=["Sci-Fi Star"], synopsis="A sci-fi story nobody has rated yet.")
    fit_and_publish()

    def position(user):
        ids = [r.movie.pk for r in recommend_for_user(user, n=40)]
        return ids.index(newcomer_film.pk)

    # A sci-fi fan has about 33 films left to discover, 3 of them sci-fi films others rated.
    sci_fi_positions = [position(u) for u in fans["Sci-Fi"][:4]]
    romance_positions = [position(u) for u in fans["Romance"][:4]]
    assert max(sci_fi_positions) < 8, sci_fi_positions
    assert np.mean(sci_fi_positions) < np.mean(romance_positions), (sci_fi_positions, romance_positions)


def test_rating_sci_fi_films_highly_moves_sci_fi_up_the_list(catalogue):
    films, fans = catalogue
    fit_and_publish()
    user = fans["Comedy"][0]
    unrated_sci_fi = [m for m in films["Sci-Fi"] if not Rating.objects.filter(user=user, movie=m).exists()]
    to_rate, still_unrated = unrated_sci_fi[:4], {m.pk for m in unrated_sci_fi[4:]}

    def sci_fi_positions():
        ids = [r.movie.pk for r in recommend_for_user(user, n=40)]
        return np.mean([ids.index(pk) for pk in still_unrated])

    before = sci_fi_positions()
    for movie in to_rate:
        rate(user, movie, 5.0)
    user_feedback_changed(user.pk)
    assert UserVector.objects.filter(user=user, model_version=current_model().version_id).exists()
    after = sci_fi_positions()
    assert after < before - 3


def test_similar_movies_share_genre_and_director(catalogue):
    films, _ = catalogue
    fit_and_publish()
    movie = films["Romance"][3]
    similar = similar_movies(movie, n=5)
    assert len(similar) == 5 and movie not in similar
    assert all(m.genres.get().name == "Romance" and m.directors.get().name == "Romance Director" for m in similar)


def test_explanations_name_films_and_directors_the_user_really_rated(catalogue):
    films, fans = catalogue
    fit_and_publish()
    user = fans["Horror"][1]
    ratings = {r.movie.title: r.score for r in Rating.objects.filter(user=user).select_related("movie")}
    recs = recommend_for_user(user, n=5)
    assert all(r.explanation for r in recs)
    for rec in recs:
        title = re.search(r"(?:Because you rated|Popular with people who liked) (.+?)(?: [★½]+)?$", rec.explanation)
        if title:
            assert title.group(1) in ratings and ratings[title.group(1)] >= 4
        director = re.search(r"Directed by (.+), whom you rate highly", rec.explanation)
        if director:
            assert director.group(1) == "Horror Director" and rec.movie.directors.get().name == director.group(1)
    assert any(re.search(r"Because you rated|Popular with people who liked|Directed by", r.explanation) for r in recs)


def test_predicted_stars_are_higher_for_the_users_genre(catalogue):
    films, fans = catalogue
    fit_and_publish()
    user = fans["Comedy"][2]
    unrated = lambda g: next(m for m in films[g] if not Rating.objects.filter(user=user, movie=m).exists())  # noqa: E731
    liked, other = predicted_rating(user, unrated("Comedy")), predicted_rating(user, unrated("Horror"))
    assert 0.5 <= other < liked <= 5.0


def test_a_film_nobody_has_rated_gets_predicted_stars_from_its_metadata(catalogue):
    films, fans = catalogue
    newcomer_film = make_movie("Brand new horror", year=2024, genres=["Horror"], directors=["Horror Director"],
                               actors=["Horror Star"], synopsis="A horror story nobody has rated yet.")
    fit_and_publish()
    horror_fan, comedy_fan = fans["Horror"][0], fans["Comedy"][0]
    # Horror fans rate horror 4-5 stars and everything else 2; comedy fans the other way round.
    mean = lambda user: Rating.objects.filter(user=user).aggregate(m=Avg("score"))["m"]  # noqa: E731
    assert predicted_rating(horror_fan, newcomer_film) > mean(horror_fan) + 0.2
    assert predicted_rating(comedy_fan, newcomer_film) < mean(comedy_fan) - 0.2


@pytest.mark.parametrize("joins", ["before the fit", "after the fit"])
def test_predicted_stars_follow_a_users_likes_and_dislikes(settings, tmp_path, joins):
    """A Western fan who gave three horror films 1 star is told far fewer stars for the other
    horror films than for the westerns they have not seen, whether the model was fitted with
    their ratings or they rated after it (fold-in, no refit)."""
    from catalog.models import Movie
    from recommendations.selectors import predicted_stars_map
    from tests.pipeline_data import make_taste_catalogue

    settings.MEDIA_ROOT = tmp_path
    make_taste_catalogue()
    westerns = list(Movie.objects.filter(genres__name="Western").order_by("pk"))
    horror = list(Movie.objects.filter(genres__name="Horror").order_by("pk"))
    fan = make_user()

    def rate_as_fan():
        for i, movie in enumerate(westerns[:9]):
            rate(fan, movie, 5.0 if i % 2 else 4.5)
        for movie in horror[:3]:
            rate(fan, movie, 1.0)

    if joins == "before the fit":
        rate_as_fan()
    fit_and_publish()
    if joins == "after the fit":
        rate_as_fan()
    stars = predicted_stars_map(fan, westerns[9:] + horror[3:])
    liked = [stars[m.pk] for m in westerns[9:]]
    disliked = [stars[m.pk] for m in horror[3:]]
    assert max(disliked) <= 3.5, (liked, disliked)
    assert min(liked) - max(disliked) >= 1.0, (liked, disliked)


def test_because_you_liked_leaves_out_films_the_user_is_predicted_to_dislike(settings, tmp_path):
    """Westerns everybody who rated them disliked are close to a western fan's favourites (the
    fans all watched them), but the fan is told 1-2 stars for them: "because you liked" does not
    offer them, and top picks put them after the films the fan is predicted to like."""
    from catalog.models import Movie
    from recommendations.selectors import because_you_liked, home_rows, predicted_stars_map
    from tests.pipeline_data import make_taste_catalogue

    settings.MEDIA_ROOT = tmp_path
    groups = make_taste_catalogue()
    westerns = list(Movie.objects.filter(genres__name="Western").order_by("pk"))
    horror = list(Movie.objects.filter(genres__name="Horror").order_by("pk"))
    duds = [make_movie(f"Dull western {i}", genres=["Western"]) for i in range(4)]
    for user in groups["Western"]:
        for movie in duds:
            rate(user, movie, 1.0 if user.pk % 2 else 1.5)
    refresh_movie_stats()
    fan = make_user()
    for i, movie in enumerate(westerns[:9]):
        rate(fan, movie, 5.0 if i % 2 else 4.5)
    for movie in horror[:3]:
        rate(fan, movie, 1.0)
    fit_and_publish()
    assert max(predicted_stars_map(fan, duds).values()) < rerank.PICK_MIN_STARS

    _, because = because_you_liked(fan, n=10)
    assert len(because) >= 5
    assert not set(duds) & set(because), [m.title for m in because]
    rows = {row.key: row for row in home_rows(fan, top_picks=recommend_for_user(fan, n=4), n=8)}
    assert rows["because"].items and min(item.predicted_stars for item in rows["because"].items) >= rerank.PICK_MIN_STARS
    # Top picks rank them after every film the fan is predicted to like.
    top = recommend_for_user(fan, n=8)
    assert len(top) == 8 and not {m.pk for m in duds} & {r.movie.pk for r in top}, [(r.movie.title, r.predicted_stars) for r in top]
