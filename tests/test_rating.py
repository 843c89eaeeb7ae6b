"""Rating a movie: create, change, remove, bounds — through the service and the pages, JS on or off."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from catalog.models import Rating
from catalog.services import rate_movie, remove_rating
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def movie():
    return make_movie("The Godfather", year=1972, genres=["Crime"])


@pytest.fixture
def member():
    return make_user("member@example.com")


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def test_rating_twice_changes_the_one_rating_and_the_movie_statistics(movie, member):
    other = make_user()
    make_rating(other, movie, 2.0)
    rate_movie(user=member, movie=movie, score=4.5)
    rate_movie(user=member, movie=movie, score="3.5")
    assert Rating.objects.get(user=member, movie=movie).score == 3.5
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (2, 2.75)


def test_removing_a_rating_updates_the_statistics(movie, member):
    make_rating(member, movie, 5.0)
    assert remove_rating(user=member, movie=movie) is True
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (0, 0.0)
    assert remove_rating(user=member, movie=movie) is False


@pytest.mark.parametrize("bad_score", [7, -1, 3.3, "abc", 0, 5.5, "", "nan", None])
def test_scores_outside_half_stars_are_refused_and_nothing_is_stored(movie, member, bad_score):
    make_rating(member, movie, 4.0)
    with pytest.raises(ValidationError, match="0.5 to 5 stars in half-star steps"):
        rate_movie(user=member, movie=movie, score=bad_score)
    assert Rating.objects.get(user=member, movie=movie).score == 4.0


def test_rating_calls_the_feedback_hook_after_commit(movie, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        rate_movie(user=member, movie=movie, score=4.0)
    assert len(callbacks) == 1


def test_rating_form_without_javascript_stores_and_redirects_back(member_client, member, movie):
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.5"})
    assert response.status_code == 302
    assert response["Location"] == movie.get_absolute_url()
    assert Rating.objects.get(user=member, movie=movie).score == 4.5
    page = member_client.get(movie.get_absolute_url()).text
    assert "You rated The Godfather 4.5 stars." in page
    assert 'value="4.5" checked' in page


def test_rating_with_javascript_answers_json_with_the_new_average(member_client, member, movie):
    make_rating(make_user(), movie, 3.0)
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "5.0"}, **JSON)
    assert response.status_code == 200
    assert response.json() == {"score": 5.0, "rating_count": 2, "rating_mean": 4.0}


@pytest.mark.parametrize("bad_score", ["7", "-1", "3.3", "abc"])
def test_invalid_scores_through_the_page_give_a_400_with_a_clear_message(member_client, member, movie, bad_score):
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": bad_score})
    assert response.status_code == 400
    assert "0.5 to 5 stars in half-star steps" in response.text
    json_response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": bad_score}, **JSON)
    assert json_response.status_code == 400
    assert "half-star steps" in json_response.json()["error"]
    assert not Rating.objects.exists()


def test_remove_button_deletes_the_rating(member_client, member, movie):
    make_rating(member, movie, 3.0)
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"remove": "1"})
    assert response.status_code == 302
    assert not Rating.objects.filter(user=member).exists()


def test_a_guest_rating_is_kept_in_the_session_and_shown_on_the_movie_page(client, movie):
    response = client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.0"})
    assert response.status_code == 302
    assert response["Location"] == movie.get_absolute_url()
    assert not Rating.objects.exists()
    page = client.get(movie.get_absolute_url()).text
    assert 'value="4.0" checked' in page
    assert "You rated this 4 stars." in page and "sign up to keep it" in page
    json_response = client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "2.5"}, **JSON)
    assert json_response.status_code == 200
    assert json_response.json()["score"] == 2.5
    assert 'value="2.5" checked' in client.get(movie.get_absolute_url()).text


def test_a_guest_can_remove_their_rating_and_bad_scores_are_refused(client, movie):
    client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.0"})
    assert client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.2"}).status_code == 400
    client.post(reverse("catalog:rate", args=[movie.pk]), {"remove": "1"})
    assert "Not rated yet." in client.get(movie.get_absolute_url()).text


def test_a_guests_rating_on_a_movie_page_is_kept_at_sign_up(client, movie):
    client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.5"})

    client.post(reverse("account_signup"), {
        "email": "newcomer@example.com", "password1": "a-Long-test-passw0rd", "password2": "a-Long-test-passw0rd"})

    assert dict(Rating.objects.filter(user__email="newcomer@example.com").values_list("movie_id", "score")) == {movie.pk: 4.5}
    movie.refresh_from_db()
    assert movie.rating_count == 1


def test_rating_a_missing_movie_is_a_404(member_client):
    assert member_client.post(reverse("catalog:rate", args=[999999]), {"score": "4.0"}).status_code == 404


def test_my_ratings_lists_edits_and_removes_with_a_return_to_the_list(member_client, member, movie):
    make_rating(member, movie, 2.5)
    page_url = reverse("catalog:my_ratings")
    page = member_client.get(page_url).text
    assert "The Godfather" in page and 'value="2.5" checked' in page
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.0", "next": page_url})
    assert response["Location"] == page_url
    assert Rating.objects.get(user=member).score == 4.0
    member_client.post(reverse("catalog:rate", args=[movie.pk]), {"remove": "1", "next": page_url})
    assert "You have not rated anything yet" in member_client.get(page_url).text


def test_my_ratings_is_paginated(member_client, member):
    for index in range(35):
        make_rating(member, make_movie(f"Film {index:02d}"), 3.0)
    first, second = member_client.get(reverse("catalog:my_ratings")), member_client.get(reverse("catalog:my_ratings"), {"page": 2})
    assert first.text.count('class="rating-row"') == 30
    assert second.text.count('class="rating-row"') == 5


def test_an_external_next_url_is_ignored(member_client, movie):
    response = member_client.post(reverse("catalog:rate", args=[movie.pk]), {"score": "4.0", "next": "https://evil.example/"})
    assert response["Location"] == movie.get_absolute_url()
