"""The signed-in home page: explained rows with predicted stars, hidden films in none of them."""
import pytest
from django.urls import reverse

from catalog.models import Director, Movie
from catalog.services import add_to_watchlist, hide_movie
from recommendations import services
from recommendations.onboarding import remember_guest_rating
from tests.factories import make_movie, make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

HOME_QUERY_LIMIT = 40  # measured below; constant whatever the number of cards (the "because you liked" row reads
# predicted stars; the test has no Redis, so the page writes its impressions through: a savepoint and one bulk insert)


@pytest.fixture
def published_model(settings, tmp_path, django_capture_on_commit_callbacks):
    """The taste catalogue with a model fitted on it and published (see tests.pipeline_data)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    groups = make_taste_catalogue()
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))
    return groups


@pytest.fixture
def western_fan(published_model, client):
    """A Western fan who rated two films of one director highly (that director made a third)
    and liked two Musicals and two Horror films."""
    fan = published_model["Western"][0]
    director = Director.objects.create(name="Sergio Leone")
    liked = list(Movie.objects.filter(ratings__user=fan, ratings__score__gte=4)[:2])
    unseen = Movie.objects.filter(genres__name="Western").exclude(ratings__user=fan).first()
    for movie in [*liked, unseen]:
        movie.directors.add(director)
    for genre in ("Musical", "Horror"):  # more tastes, for when the Westerns run out
        for movie in Movie.objects.filter(genres__name=genre).exclude(ratings__user=fan)[:2]:
            make_rating(fan, movie, 5.0)
    client.force_login(fan)
    client.fan, client.unseen_by_director = fan, unseen
    return client


def rows_of(response) -> dict[str, list]:
    return {row.title: [item.movie.pk for item in row.items] for row in response.context["rows"]}


@pytest.mark.django_db(transaction=True)
def test_signed_in_home_has_explained_personal_rows_with_predicted_stars(western_fan):
    response = western_fan.get(reverse("catalog:home"))
    rows = rows_of(response)
    latest_liked = western_fan.fan.ratings.filter(score__gte=4).order_by("-updated_at", "-id").first().movie

    assert next(iter(rows)) == "Top picks for you"
    assert f"Because you liked {latest_liked.title}" in rows
    assert western_fan.unseen_by_director.pk in rows["More from Sergio Leone"]
    assert "Trending" in rows
    # Top picks already show the unseen Westerns, so the genre row moves on to another liked genre.
    genre_rows = [row for row in response.context["rows"] if row.key == "genre"]
    assert [row.title for row in genre_rows] in (["Top picks in Horror"], ["Top picks in Musical"])
    genre = genre_rows[0].title.removeprefix("Top picks in ")
    assert all(genre in {g.name for g in item.movie.genres.all()} for item in genre_rows[0].items)
    for row in response.context["rows"]:
        assert all(item.explanation for item in row.items), row.title
        assert all(item.predicted_stars is not None for item in row.items), row.title
    page = response.text
    assert "You rate films directed by Sergio Leone highly" in page
    assert page.count('class="card__why"') == sum(len(ids) for ids in rows.values())
    assert "For you: " in page
    shown = [pk for title, ids in rows.items() if not title.startswith("More from") for pk in ids]
    assert len(shown) == len(set(shown)), "a film shows in one row only (but for the person's row)"


@pytest.mark.django_db(transaction=True)
def test_a_hidden_movie_leaves_every_home_row(western_fan):
    shown = {pk for ids in rows_of(western_fan.get(reverse("catalog:home"))).values() for pk in ids}
    for movie in Movie.objects.filter(pk__in=shown):
        hide_movie(user=western_fan.fan, movie=movie)

    rows = rows_of(western_fan.get(reverse("catalog:home")))

    assert rows, "the rows refill with other films"
    assert not shown & {pk for ids in rows.values() for pk in ids}


@pytest.mark.django_db(transaction=True)
def test_signed_in_home_page_query_count_is_bounded(western_fan, django_assert_max_num_queries):
    western_fan.get(reverse("catalog:home"))  # the first request fills the recommendation cache
    with django_assert_max_num_queries(HOME_QUERY_LIMIT):
        response = western_fan.get(reverse("catalog:home"))
    assert sum(len(row.items) for row in response.context["rows"]) >= 30


@pytest.mark.django_db
def test_guests_get_popular_top_rated_and_trending(client):
    movie = make_movie("Heat")
    make_rating(make_user(), movie, 4.5)
    page = client.get(reverse("catalog:home")).text
    for heading in ("Popular", "Top rated", "Trending"):
        assert f">{heading}</h2>" in page


@pytest.mark.django_db
def test_a_member_with_few_ratings_is_invited_to_rate_more(client):
    member = make_user()
    make_rating(member, make_movie("Heat"), 4.0)
    client.force_login(member)
    page = client.get(reverse("catalog:home")).text
    assert "Rate 9 more movies for good suggestions" in page
    assert reverse("onboarding:start") in page


@pytest.mark.django_db
def test_a_member_with_enough_ratings_sees_no_onboarding_banner(client):
    member = make_user()
    for i in range(10):
        make_rating(member, make_movie(f"Film {i}"), 3.5)
    client.force_login(member)
    assert "for good suggestions" not in client.get(reverse("catalog:home")).text


@pytest.mark.django_db
def test_a_guest_who_rated_is_asked_to_sign_up_to_keep_the_ratings(client):
    session = client.session
    remember_guest_rating(session, movie=make_movie("Heat"), score=4.5)
    remember_guest_rating(session, movie=make_movie("Alien"), score=3.0)
    session.save()
    assert "Sign up to keep your 2 ratings" in client.get(reverse("catalog:home")).text


# --- The movie page -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_movie_page_shows_my_predicted_rating_until_i_rate_it(western_fan):
    unseen = western_fan.unseen_by_director
    page = western_fan.get(unseen.get_absolute_url())
    assert 0.5 <= page.context["predicted"] <= 5.0
    assert "Your predicted rating" in page.text

    make_rating(western_fan.fan, unseen, 3.0)
    assert "Your predicted rating" not in western_fan.get(unseen.get_absolute_url()).text


@pytest.mark.django_db
def test_movie_page_lists_more_from_its_director(client):
    heat = make_movie("Heat", directors=["Michael Mann"])
    thief = make_movie("Thief", directors=["Michael Mann"])
    other = make_movie("Alien", directors=["Ridley Scott"])
    response = client.get(heat.get_absolute_url())
    assert [movie.pk for movie in response.context["by_directors"]] == [thief.pk]
    assert "More from Michael Mann" in response.text
    assert other.pk not in {movie.pk for movie in response.context["by_directors"]}


# --- The watchlist ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_watchlist_sorts_by_predicted_rating_and_picks_one_for_tonight_among_the_best(western_fan):
    fan = western_fan.fan
    candidates = list(Movie.objects.exclude(ratings__user=fan)[:8])
    for movie in candidates:
        add_to_watchlist(user=fan, movie=movie)

    response = western_fan.get(reverse("catalog:watchlist"), {"sort": "predicted"})
    stars = [entry.predicted_stars for entry in response.context["page"].object_list]
    assert len(stars) == 8 and None not in stars
    assert stars == sorted(stars, reverse=True)
    assert "Pick one for tonight" in response.text

    best = {entry.movie_id for entry in response.context["page"].object_list[:5]}
    picks = {western_fan.get(reverse("catalog:watchlist"), {"pick": "1"}).context["tonight"].movie_id for _ in range(12)}
    assert picks <= best
    assert "Tonight:" in western_fan.get(reverse("catalog:watchlist"), {"pick": "1"}).text


@pytest.mark.django_db
def test_picking_for_tonight_from_an_empty_watchlist_shows_the_empty_page(client):
    client.force_login(make_user())
    response = client.get(reverse("catalog:watchlist"), {"pick": "1"})
    assert response.status_code == 200
    assert response.context["tonight"] is None
    assert "Your watchlist is empty" in response.text
