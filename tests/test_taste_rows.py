"""Rows true to the user's taste: the discovery dial, rows in the order of their stars, honest
explanations, similar movies that are not just popular, first picks that follow picked genres."""
import re

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Movie, Rating
from catalog.services import refresh_movie_stats
from recommendations import selectors, services
from recommendations.models import DiscoveryPreference, GenrePreference
from recommendations.selectors import current_model, nearest_items, recommend_for_user, similar_movies
from tests.factories import make_genre, make_movie, make_user

GENRES = ["Sci-Fi", "Romance", "Comedy", "Horror"]
FIT = {"components": 16, "epochs": 10, "stars_iterations": 3, "ease_lambda": 20.0, "ease_min_count": 1, "threads": 1}


MAINSTREAM = 40
FANS = 25
WORDS = "night city love road war river secret family storm island train house letter summer".split()


@pytest.fixture
def world(settings, tmp_path, django_capture_on_commit_callbacks):
    """Four genres of 30 films, each genre with its own director, synopses drawn from one shared
    vocabulary; within a genre, film k is rated by about 1/(1 + k/4) of the genre's fans (a long
    tail). 25 fans per genre rate films of their genre 4-5 stars and three films of the next genre
    1.5; 40 mainstream viewers rate the three most popular films of every genre 3.5-4.5. A
    blockbuster comedy everybody rates 3.5, and a cult thriller only the horror fans rate 4.5.
    A model is fitted and published."""
    settings.MEDIA_ROOT = tmp_path / "media"
    rng = np.random.default_rng(11)
    synopsis = lambda: " ".join(rng.choice(WORDS, 6)) + "."  # noqa: E731
    films = {g: [make_movie(f"{g} {k}", year=1960 + k, genres=[g], directors=[f"{g} Director"], synopsis=synopsis())
                 for k in range(30)] for g in GENRES}
    blockbuster = make_movie("Blockbuster", year=1995, genres=["Comedy", "Action"], synopsis=synopsis())
    cult = make_movie("Cult thriller", year=1985, genres=["Thriller"], synopsis=synopsis())
    now = timezone.now()
    ratings, fans = [], {g: [] for g in GENRES}
    for g, genre in enumerate(GENRES):
        for _ in range(FANS):
            user = make_user(last_login=now)
            fans[genre].append(user)
            for k, movie in enumerate(films[genre]):
                if rng.random() < 1 / (1 + k / 4):
                    ratings.append(Rating(user=user, movie=movie, score=float(rng.choice([4.0, 4.5, 5.0])),
                                          created_at=now, updated_at=now))
            for movie in rng.choice(films[GENRES[(g + 1) % 4]][:10], 3, replace=False):
                ratings.append(Rating(user=user, movie=movie, score=1.5, created_at=now, updated_at=now))
            ratings.append(Rating(user=user, movie=blockbuster, score=3.5, created_at=now, updated_at=now))
            if genre == "Horror":
                ratings.append(Rating(user=user, movie=cult, score=4.5, created_at=now, updated_at=now))
    for _ in range(MAINSTREAM):
        viewer = make_user()
        for movie in [films[g][k] for g in GENRES for k in range(3)] + [blockbuster]:
            ratings.append(Rating(user=viewer, movie=movie, score=float(rng.choice([3.5, 4.0, 4.5])),
                                  created_at=now, updated_at=now))
    Rating.objects.bulk_create(ratings)
    refresh_movie_stats()
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(services.fit_model(hyperparameters=FIT, progress=False))
    return {"films": films, "fans": fans, "blockbuster": blockbuster, "cult": cult}


def rate(user, movie, score):
    now = timezone.now()
    Rating.objects.update_or_create(user=user, movie=movie, defaults={"score": score, "created_at": now, "updated_at": now})


def newcomer(world, genre, liked=6):
    """A new user who rated the `liked` most popular films of one genre 5 stars."""
    user = make_user()
    for movie in world["films"][genre][:liked]:
        rate(user, movie, 5.0)
    return user


def mean_popularity(recommendations) -> float:
    return float(np.mean([np.log1p(r.movie.rating_count) for r in recommendations]))


# --- The discovery dial ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_discovery_dial_moves_top_picks_from_popular_films_to_hidden_gems_step_by_step(world):
    users = [newcomer(world, genre, liked=4) for genre in GENRES]
    means = [np.mean([mean_popularity(recommend_for_user(user, n=10, discovery=level)) for user in users])
             for level in range(5)]
    assert all(a > b for a, b in zip(means, means[1:])), means
    gems = recommend_for_user(users[0], n=10, discovery=4)
    assert sum(r.movie.genres.filter(name="Sci-Fi").exists() for r in gems) >= 6, "hidden gems of the user's taste"


@pytest.mark.django_db(transaction=True)
def test_the_dial_set_on_the_home_page_is_remembered_and_followed_by_the_api(world, client):
    user = newcomer(world, "Romance")
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    before = [item["movie"]["id"] for item in api.get("/api/v1/recommendations/", {"n": 12}).json()["results"]]

    response = client.post(reverse("catalog:discovery"), {"discovery": "4"})

    assert response.status_code == 302
    assert DiscoveryPreference.objects.get(user=user).level == 4
    page = client.get(reverse("catalog:home"))
    assert page.context["discovery_level"] == 4 and 'value="4" checked' in page.text
    after = [item["movie"]["id"] for item in api.get("/api/v1/recommendations/", {"n": 12}).json()["results"]]
    assert set(after) == {item.movie.pk for item in page.context["rows"][0].items}
    popularity = dict(Movie.objects.values_list("pk", "rating_count"))
    assert np.mean([popularity[pk] for pk in after]) < np.mean([popularity[pk] for pk in before])
    assert api.get("/api/v1/me/discovery/").json() == {"level": 4, "label": "Hidden gems"}


@pytest.mark.django_db(transaction=True)
def test_the_api_moves_the_dial_for_one_request_or_for_good(world):
    user = newcomer(world, "Horror")
    api = APIClient()
    api.force_authenticate(user)
    popular = api.get("/api/v1/recommendations/", {"n": 10, "discovery": 0}).json()["results"]
    gems = api.get("/api/v1/recommendations/", {"n": 10, "discovery": 4}).json()["results"]
    assert np.mean([i["movie"]["rating_count"] for i in gems]) < np.mean([i["movie"]["rating_count"] for i in popular])
    assert not DiscoveryPreference.objects.filter(user=user).exists(), "a GET changes nothing"

    assert api.put("/api/v1/me/discovery/", {"level": 0}, format="json").json() == {"level": 0, "label": "Popular"}
    remembered = api.get("/api/v1/recommendations/", {"n": 10}).json()["results"]
    assert [i["movie"]["id"] for i in remembered] == [i["movie"]["id"] for i in popular]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["5", "-1", "²", "9" * 5000, "", "true"])
def test_a_dial_position_that_does_not_exist_is_a_clear_400_and_changes_nothing(client, value):
    user = make_user()
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)

    assert client.post(reverse("catalog:discovery"), {"discovery": value}).status_code == 400
    assert api.put("/api/v1/me/discovery/", {"level": value}, format="json").status_code == 400
    response = api.get("/api/v1/recommendations/", {"discovery": value})
    assert response.status_code == 400 and "discovery" in response.json()["error"]["fields"]
    assert api.put("/api/v1/me/discovery/", {"level": True}, format="json").status_code == 400
    assert not DiscoveryPreference.objects.filter(user=user).exists()


# --- Rows in the order of their stars --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_home_row_that_shows_stars_reads_in_their_order(world, client):
    user = newcomer(world, "Sci-Fi")
    rate(user, world["films"]["Sci-Fi"][7], 4.5)  # a favourite director: two films or more
    client.force_login(user)

    rows = client.get(reverse("catalog:home")).context["rows"]

    assert len(rows) >= 3
    for row in rows:
        stars = [item.predicted_stars for item in row.items]
        assert None not in stars and stars == sorted(stars, reverse=True), (row.title, stars)


# --- Explanations ------------------------------------------------------------------------------------


BECAUSE = re.compile(r"^Because you rated (.+?) [★½]+$")


@pytest.mark.django_db(transaction=True)
def test_because_you_rated_names_a_nearest_neighbour_that_shares_a_genre_or_director(world):
    user = newcomer(world, "Comedy")
    for movie in world["films"]["Horror"][:3]:
        rate(user, movie, 4.0)  # liked, but a different taste
    model = current_model()
    by_title = {movie.title: movie for movie in Movie.objects.all()}

    recommendations = recommend_for_user(user, n=40)
    anchored = [(r, BECAUSE.match(r.explanation)) for r in recommendations]
    anchored = [(r, by_title[m.group(1)]) for r, m in anchored if m]

    assert anchored, [r.explanation for r in recommendations]
    for recommendation, anchor in anchored:
        item, anchor_item = model.item_index[recommendation.movie.pk], model.item_index[anchor.pk]
        assert anchor_item in nearest_items(model, [item])[item].tolist()
        shared = set(model.item_genres[item]) & set(model.item_genres[anchor_item]) or \
            set(model.item_people[item]) & set(model.item_people[anchor_item])
        assert shared, (recommendation.movie.title, anchor.title)
        assert Rating.objects.get(user=user, movie=anchor).score >= 4


@pytest.mark.django_db(transaction=True)
def test_a_film_close_to_nothing_the_user_liked_gets_another_true_reason(world):
    user = newcomer(world, "Romance")
    recommendations = recommend_for_user(user, n=60)
    elsewhere = [r for r in recommendations if not r.movie.genres.filter(name="Romance").exists()]

    assert elsewhere
    for r in elsewhere:
        assert not r.explanation.startswith("Because you rated"), (r.movie.title, r.explanation)
        assert r.explanation in (selectors.SIMILAR_TASTE, "Because you rate Comedy films highly") or \
            r.explanation.startswith("Directed by"), r.explanation


@pytest.mark.django_db(transaction=True)
def test_a_genre_the_user_rates_highly_is_a_reason(world):
    user = newcomer(world, "Horror", liked=3)
    horror = world["films"]["Horror"]
    explained = {r.movie.pk: r.explanation for r in recommend_for_user(user, n=60)}
    reasons = {explained[m.pk] for m in horror if m.pk in explained}
    assert reasons <= {"Because you rate Horror films highly", "Directed by Horror Director, whom you rate highly"} | {
        reason for reason in reasons if reason.startswith("Because you rated Horror ")}


# --- Similar movies ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_similar_movies_share_the_genre_and_are_not_just_the_popular_ones(world):
    horror = world["films"]["Horror"][0]  # one of the films the mainstream viewers rate too
    similar = similar_movies(horror, n=10)

    assert sum(m.genres.filter(name="Horror").exists() for m in similar) >= 7
    assert world["blockbuster"] not in similar, "everybody rates it: popularity alone is no likeness"


@pytest.mark.django_db(transaction=True)
def test_films_the_same_people_rate_are_neighbours_even_without_a_shared_genre(world):
    model = current_model()
    horror = model.item_index[world["films"]["Horror"][0].pk]
    ranking, _ = model.similar_items(horror, model.n_items - 1)
    position = {int(i): p for p, i in enumerate(ranking.tolist())}
    cult, blockbuster = model.item_index[world["cult"].pk], model.item_index[world["blockbuster"].pk]
    random_comedy = model.item_index[world["films"]["Comedy"][3].pk]
    assert position[cult] < position[blockbuster] < model.n_items
    assert position[cult] < position[random_comedy]


# --- First picks follow the genres picked at onboarding ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_before_any_rating_the_first_picks_follow_the_picked_genres(world, client):
    user = make_user()
    client.force_login(user)
    picked = [make_genre("Romance"), make_genre("Comedy")]
    client.post(reverse("onboarding:genres"), {"genres": [g.pk for g in picked]})
    assert set(GenrePreference.objects.filter(user=user).values_list("genre__name", flat=True)) == {"Romance", "Comedy"}

    top = client.get(reverse("catalog:home")).context["rows"][0].items[:10]

    in_picked = [r for r in top if {g.name for g in r.movie.genres.all()} & {"Romance", "Comedy"}]
    assert len(in_picked) >= 8, [r.movie.title for r in top]
    assert {"Romance", "Comedy"} <= {g.name for r in top for g in r.movie.genres.all()}
