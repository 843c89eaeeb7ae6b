"""Explained recommendations, similar movies and predicted stars over the REST API."""
import pytest
from rest_framework.test import APIClient

from catalog.models import Movie
from catalog.services import hide_movie
from recommendations import services
from tests.factories import make_movie, make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def published_model(media, django_capture_on_commit_callbacks):
    """A small catalogue with clear tastes and a model fitted on it, published.

    Used with transaction=True: ids are never reused between tests, so the process-wide loaded
    model of an earlier test cannot pass for this one's.
    """
    groups = make_taste_catalogue()
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    return groups


def movie_genres(item) -> set[str]:
    return {genre["name"] for genre in item["movie"]["genres"]}


# --- Without a model: popularity, explained ------------------------------------------------------


@pytest.mark.django_db
def test_without_a_model_visitors_get_popular_movies_explained():
    popular, quiet = make_movie("Popular"), make_movie("Quiet")
    for _ in range(2):
        make_rating(make_user(), popular, 4.0)
    make_rating(make_user(), quiet, 3.0)

    body = APIClient().get("/api/v1/recommendations/", {"row": "top", "n": 2}).json()

    assert body["row"] == "top"
    assert [item["movie"]["title"] for item in body["results"]] == ["Popular", "Quiet"]
    assert all(item["explanation"] for item in body["results"])
    assert all(isinstance(item["score"], float) for item in body["results"])


@pytest.mark.django_db
def test_with_little_activity_the_trending_row_is_well_liked_recent_releases():
    liked, disliked = make_movie("Well liked", year=2020), make_movie("Disliked", year=2020)
    make_movie("Old favourite", year=1990)
    make_rating(make_user(), liked, 4.0)
    make_rating(make_user(), disliked, 1.0)

    body = APIClient().get("/api/v1/recommendations/", {"row": "trending"}).json()

    assert [item["movie"]["title"] for item in body["results"]] == ["Well liked"]
    assert body["results"][0]["explanation"] == "Well liked among recent releases"


@pytest.mark.django_db
def test_similar_row_needs_a_movie_and_never_lists_the_movie_itself():
    western = make_movie("Western A", genres=["Western"])
    make_movie("Western B", genres=["Western"])
    make_movie("Musical", genres=["Musical"])

    missing = APIClient().get("/api/v1/recommendations/", {"row": "similar"})
    body = APIClient().get("/api/v1/recommendations/", {"row": "similar", "movie": western.pk}).json()

    assert missing.status_code == 400 and "movie" in missing.json()["error"]["fields"]
    assert body["title"] == "More like Western A"
    assert [item["movie"]["title"] for item in body["results"]] == ["Western B"]


@pytest.mark.django_db
def test_because_row_needs_a_sign_in():
    response = APIClient().get("/api/v1/recommendations/", {"row": "because"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_unknown_row_or_genre_is_a_400():
    assert APIClient().get("/api/v1/recommendations/", {"row": "best"}).status_code == 400
    response = APIClient().get("/api/v1/recommendations/", {"row": "genre", "genre": "no-such-genre"})
    assert response.status_code == 400 and "genre" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_predicted_rating_needs_a_sign_in_and_an_existing_movie():
    movie = make_movie()

    assert APIClient().get(f"/api/v1/movies/{movie.pk}/predicted-rating/").status_code == 401
    assert signed_in(make_user()).get("/api/v1/movies/987654/predicted-rating/").status_code == 404
    body = signed_in(make_user()).get(f"/api/v1/movies/{movie.pk}/predicted-rating/").json()
    assert body == {"movie": movie.pk, "predicted_rating": None}


# --- With a published model ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_top_row_is_personal_scored_and_explained_and_skips_what_i_rated(published_model):
    fan = published_model["Western"][0]
    rated = set(fan.ratings.values_list("movie_id", flat=True))

    body = signed_in(fan).get("/api/v1/recommendations/", {"row": "top", "n": 5}).json()

    results = body["results"]
    assert len(results) == 5
    assert not rated & {item["movie"]["id"] for item in results}
    assert all(movie_genres(item) == {"Western"} for item in results)
    assert all(isinstance(item["score"], float) and item["explanation"] for item in results)
    assert all(0.5 <= item["predicted_stars"] <= 5.0 for item in results)
    stars = [item["predicted_stars"] for item in results]
    assert stars == sorted(stars, reverse=True), "the row reads in the order of the stars it shows"


@pytest.mark.django_db(transaction=True)
def test_a_hidden_movie_is_never_recommended(published_model):
    fan = published_model["Western"][1]
    client = signed_in(fan)
    first = client.get("/api/v1/recommendations/", {"row": "genre", "genre": "western", "n": 3}).json()["results"][0]

    hide_movie(user=fan, movie=Movie.objects.get(pk=first["movie"]["id"]))
    after = client.get("/api/v1/recommendations/", {"row": "genre", "genre": "western", "n": 20}).json()["results"]

    assert first["movie"]["id"] not in {item["movie"]["id"] for item in after}


@pytest.mark.django_db(transaction=True)
def test_genre_row_keeps_to_the_genre(published_model):
    fan = published_model["Western"][0]

    body = signed_in(fan).get("/api/v1/recommendations/", {"row": "genre", "genre": "musical", "n": 5}).json()

    assert body["title"] == "Top picks in Musical"
    assert body["results"] and all(movie_genres(item) == {"Musical"} for item in body["results"])


@pytest.mark.django_db(transaction=True)
def test_because_row_builds_on_a_movie_i_liked_and_skips_what_i_rated(published_model):
    fan = published_model["Horror"][0]
    liked = fan.ratings.filter(score__gte=4).order_by("-updated_at", "-id").first().movie
    rated = set(fan.ratings.values_list("movie_id", flat=True))

    body = signed_in(fan).get("/api/v1/recommendations/", {"row": "because", "movie": liked.pk, "n": 5}).json()

    assert body["title"] == f"Because you liked {liked.title}"
    assert body["results"]
    assert not rated & {item["movie"]["id"] for item in body["results"]}
    assert all(item["explanation"].startswith(f"Because you rated {liked.title}") for item in body["results"])


@pytest.mark.django_db(transaction=True)
def test_predicted_rating_and_similar_movies_with_a_model(published_model):
    fan = published_model["Musical"][0]
    unseen = Movie.objects.filter(genres__name="Musical").exclude(ratings__user=fan).first()

    predicted = signed_in(fan).get(f"/api/v1/movies/{unseen.pk}/predicted-rating/").json()
    similar = APIClient().get(f"/api/v1/movies/{unseen.pk}/similar/").json()

    assert 0.5 <= predicted["predicted_rating"] <= 5.0
    assert similar["movie"] == unseen.pk
    assert similar["results"] and unseen.pk not in {movie["id"] for movie in similar["results"]}
