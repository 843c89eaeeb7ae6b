"""Accounts: the profile page, "download my data", "delete my account", and the user admin."""
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import export_user_data
from accounts.services import delete_account, update_profile
from catalog.models import Movie, NotInterested, Rating, Tag, WatchlistEntry
from catalog.services import add_to_watchlist, hide_movie
from recommendations.models import GenrePreference
from tests.factories import DEFAULT_PASSWORD, make_genre, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice(client):
    user = make_user("alice@example.com")
    client.force_login(user)
    return user


@pytest.fixture
def bob():
    return make_user("bob@example.com")


@pytest.fixture
def movies():
    return (
        make_movie("The Godfather", year=1972, imdb_id="tt0068646", movielens_id=858),
        make_movie("Amélie", year=2001, movielens_id=4973),
        make_movie("Alien", year=1979),
    )


# --- profile -------------------------------------------------------------------------------


def test_profile_requires_login(client):
    response = client.get(reverse("accounts:profile"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_profile_saves_optional_demographics(client, alice):
    response = client.post(
        reverse("accounts:profile"),
        {"birth_year": "1985", "gender": "F", "occupation": "librarian", "country": "Portugal"},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.birth_year, alice.gender, alice.occupation, alice.country) == (1985, "F", "librarian", "Portugal")


def test_profile_fields_can_all_be_left_blank(client, alice):
    update_profile(user=alice, birth_year=1990, occupation="healthcare")

    response = client.post(reverse("accounts:profile"), {"birth_year": "", "gender": "", "occupation": "", "country": ""})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.birth_year, alice.occupation) == (None, "")


@pytest.mark.parametrize("birth_year", ["1850", str(timezone.now().year + 1), "nineteen"])
def test_profile_with_an_invalid_birth_year_shows_an_error_and_saves_nothing(client, alice, birth_year):
    update_profile(user=alice, birth_year=1980, occupation="healthcare")

    response = client.post(
        reverse("accounts:profile"),
        {"birth_year": birth_year, "gender": "M", "occupation": "technician", "country": "Chile"},
    )

    assert response.status_code == 400
    assert response.context["form"].errors["birth_year"]
    alice.refresh_from_db()
    assert (alice.birth_year, alice.gender, alice.occupation, alice.country) == (1980, "", "healthcare", "")


def test_update_profile_service_rejects_an_implausible_birth_year(alice):
    with pytest.raises(ValidationError) as error:
        update_profile(user=alice, birth_year=1899)

    assert "birth_year" in error.value.message_dict
    alice.refresh_from_db()
    assert alice.birth_year is None


def test_update_profile_service_rejects_an_unknown_gender_and_overlong_occupation(alice):
    with pytest.raises(ValidationError) as error:
        update_profile(user=alice, gender="X", occupation="o" * 65)

    assert set(error.value.message_dict) == {"gender", "occupation"}
    alice.refresh_from_db()
    assert (alice.gender, alice.occupation) == ("", "")


def test_profile_shows_activity_with_links_to_rated_movies(client, alice, bob, movies):
    godfather, amelie, alien = movies
    make_rating(alice, godfather, 5.0)
    make_rating(alice, amelie, 3.5)
    make_rating(bob, alien, 1.0)
    add_to_watchlist(user=alice, movie=alien)

    response = client.get(reverse("accounts:profile"))

    assert response.status_code == 200
    assert response.context["rating_count"] == 2
    assert response.context["rating_mean"] == pytest.approx(4.25)
    assert response.context["watchlist_count"] == 1
    html = response.content.decode()
    assert f'href="{godfather.get_absolute_url()}"' in html
    assert f'href="{amelie.get_absolute_url()}"' in html
    assert f'href="{alien.get_absolute_url()}"' not in html, "bob's rating is not on alice's profile"
    assert "4.25" in html


# --- download my data ----------------------------------------------------------------------


def test_export_is_a_json_attachment_with_only_the_users_own_data(client, alice, bob, movies):
    godfather, amelie, alien = movies
    make_rating(alice, godfather, 4.5)
    make_rating(bob, amelie, 2.0)
    add_to_watchlist(user=alice, movie=alien)
    add_to_watchlist(user=bob, movie=godfather)
    hide_movie(user=alice, movie=amelie)
    update_profile(user=alice, birth_year=1970, country="Norway")
    GenrePreference.objects.create(user=alice, genre=make_genre("Drama"))
    GenrePreference.objects.create(user=bob, genre=make_genre("Horror"))

    response = client.get(reverse("accounts:export"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    assert ".json" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["profile"]["email"] == "alice@example.com"
    assert (data["profile"]["birth_year"], data["profile"]["country"]) == (1970, "Norway")
    assert data["profile"]["favourite_genres"] == ["Drama"]
    assert [(r["movie"]["title"], r["movie"]["year"], r["score"]) for r in data["ratings"]] == [
        ("The Godfather", 1972, 4.5)
    ]
    rating = data["ratings"][0]
    assert (rating["movie"]["imdb_id"], rating["movie"]["movielens_id"], rating["movie"]["id"]) == (
        "tt0068646",
        858,
        godfather.pk,
    )
    assert rating["created_at"] and rating["updated_at"]
    assert [e["movie"]["title"] for e in data["watchlist"]] == ["Alien"]
    assert [e["movie"]["title"] for e in data["not_interested"]] == ["Amélie"]


def test_export_requires_login(client):
    response = client.get(reverse("accounts:export"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_export_includes_the_users_history_imports_with_their_rows(client, alice, bob):
    from recommendations.models import HistoryImport

    rows = [{"title": "Alien", "year": 1979, "rating": 4.5, "movie_id": None}]
    HistoryImport.objects.create(user=alice, source="letterboxd", filename="letterboxd.zip", rows=rows, total=1)
    HistoryImport.objects.create(user=bob, source="imdb", filename="bobs.csv", rows=[])

    data = json.loads(client.get(reverse("accounts:export")).content)

    assert [(i["source"], i["filename"], i["status"], i["rows"]) for i in data["history_imports"]] == [
        ("letterboxd", "letterboxd.zip", "preview", rows)
    ]


def test_export_includes_the_users_tags(alice, movies):
    Tag.objects.create(user=alice, movie=movies[0], tag="mafia", created_at=timezone.now())

    assert [t["tag"] for t in export_user_data(alice)["tags"]] == ["mafia"]


# --- delete my account ---------------------------------------------------------------------


def test_opening_the_delete_page_asks_for_confirmation_and_deletes_nothing(client, alice):
    response = client.get(reverse("accounts:delete"))

    assert response.status_code == 200
    assert "password" in response.content.decode().lower()
    assert User.objects.filter(pk=alice.pk).exists()


def test_delete_with_a_wrong_confirmation_is_refused_and_deletes_nothing(client, alice, movies):
    make_rating(alice, movies[0], 4.0)

    response = client.post(reverse("accounts:delete"), {"confirmation": "not my password"})

    assert response.status_code == 400
    assert response.context["form"].errors["confirmation"]
    assert User.objects.filter(pk=alice.pk).exists()
    assert Rating.objects.filter(user=alice).count() == 1


def test_delete_removes_the_user_their_ratings_and_lists_keeps_others_and_updates_movie_stats(
    client, alice, bob, movies
):
    godfather, amelie, alien = movies
    make_rating(alice, godfather, 5.0)
    make_rating(bob, godfather, 3.0)
    make_rating(alice, amelie, 1.0)
    add_to_watchlist(user=alice, movie=alien)
    add_to_watchlist(user=bob, movie=alien)
    hide_movie(user=alice, movie=alien)
    Tag.objects.create(user=alice, movie=godfather, tag="classic", created_at=timezone.now())

    response = client.post(reverse("accounts:delete"), {"confirmation": DEFAULT_PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == "/"
    assert "has been deleted" in response.content.decode() or "have been deleted" in response.content.decode()
    assert not response.context["user"].is_authenticated
    assert not User.objects.filter(pk=alice.pk).exists()
    assert not Rating.objects.filter(user_id=alice.pk).exists()
    assert not WatchlistEntry.objects.filter(user_id=alice.pk).exists()
    assert not NotInterested.objects.filter(user_id=alice.pk).exists()
    assert not Tag.objects.filter(user_id=alice.pk).exists()
    assert Rating.objects.filter(user=bob).count() == 1
    assert WatchlistEntry.objects.filter(user=bob).count() == 1
    godfather, amelie = Movie.objects.get(pk=godfather.pk), Movie.objects.get(pk=amelie.pk)
    assert (godfather.rating_count, godfather.rating_mean) == (1, 3.0)
    assert (amelie.rating_count, amelie.rating_mean) == (0, 0.0)


@pytest.mark.parametrize("typed", ["alice@example.com", "  Alice@Example.com "])
def test_typing_the_email_does_not_delete_the_account(client, alice, typed):
    response = client.post(reverse("accounts:delete"), {"confirmation": typed})

    assert response.status_code == 400
    assert response.context["form"].errors["confirmation"] == ["That is not your current password."]
    assert User.objects.filter(pk=alice.pk).exists()


def test_the_api_does_not_delete_an_account_for_its_email_either(alice):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(alice)

    response = api.post("/api/v1/me/delete/", {"confirmation": "alice@example.com"}, format="json")

    assert response.status_code == 400
    assert User.objects.filter(pk=alice.pk).exists()


def test_guessing_the_password_on_the_delete_form_is_rate_limited(client, alice):
    for attempt in range(10):
        client.post(reverse("accounts:delete"), {"confirmation": f"guess {attempt}"})

    response = client.post(reverse("accounts:delete"), {"confirmation": DEFAULT_PASSWORD})

    assert response.status_code == 400
    assert "Too many attempts" in response.content.decode()
    assert User.objects.filter(pk=alice.pk).exists()


@pytest.fixture
def passwordless(client):
    """An account staff created without a password, signed in (say, after a password reset was never done)."""
    user = make_user("nopass@example.com")
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    return user


def confirmation_link(message) -> str:
    import re as regex

    return regex.search(r"https?://testserver(/accounts/delete/confirm/\S+/)", message.body).group(1)


def test_an_account_without_a_password_is_deleted_through_an_emailed_link(client, passwordless, mailoutbox, movies):
    make_rating(passwordless, movies[0], 4.0)
    page = client.get(reverse("accounts:delete")).content.decode()
    assert "Email me the confirmation link" in page and 'name="confirmation"' not in page

    client.post(reverse("accounts:delete"))
    assert User.objects.filter(pk=passwordless.pk).exists(), "asking for the link deletes nothing"
    assert [m.to for m in mailoutbox] == [["nopass@example.com"]]
    link = confirmation_link(mailoutbox[0])
    assert client.get(link).status_code == 200
    assert User.objects.filter(pk=passwordless.pk).exists(), "opening the link deletes nothing"

    response = client.post(link)

    assert response.status_code == 302
    assert not User.objects.filter(pk=passwordless.pk).exists()
    assert not Rating.objects.filter(user_id=passwordless.pk).exists()


def test_a_deletion_link_works_only_for_its_own_account_and_for_an_hour(client, passwordless, mailoutbox, bob):
    import time

    from django.core import signing

    from accounts.services import DELETION_LINK_SALT

    class SignedAnHourAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 3601)

    client.post(reverse("accounts:delete"))
    link = confirmation_link(mailoutbox[0])
    stale = reverse("accounts:confirm_delete", args=[SignedAnHourAgo(salt=DELETION_LINK_SALT).sign_object(passwordless.pk)])
    forged = reverse("accounts:confirm_delete", args=[f"{passwordless.pk}:forged:signature"])

    for refused in (stale, forged):
        assert client.post(refused).status_code == 400
    client.force_login(bob)
    assert client.post(link).status_code == 400, "bob cannot use the link sent to another account"
    assert User.objects.filter(pk=passwordless.pk).exists() and User.objects.filter(pk=bob.pk).exists()


def test_delete_account_service_refreshes_stats_of_every_movie_the_user_rated(alice, movies):
    for movie in movies:
        make_rating(alice, movie, 4.0)

    delete_account(user=alice)

    assert list(Movie.objects.values_list("rating_count", flat=True)) == [0, 0, 0]


def test_deleted_users_cannot_log_in_again(client, alice):
    client.post(reverse("accounts:delete"), {"confirmation": DEFAULT_PASSWORD})

    client.post(reverse("account_login"), {"login": "alice@example.com", "password": DEFAULT_PASSWORD})

    assert "_auth_user_id" not in client.session


# --- admin ---------------------------------------------------------------------------------


def test_admin_is_closed_to_anonymous_visitors_and_non_staff_users(client, alice):
    assert client.get("/admin/").status_code == 302
    client.logout()
    assert client.get("/admin/").url.startswith("/admin/login/")


def test_admin_rejects_a_signed_in_non_staff_user(client, alice):
    response = client.get("/admin/accounts/user/")

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


@pytest.fixture
def staff_client(client):
    staff = make_user("staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_staff_find_users_by_email_and_filter_by_source(staff_client):
    make_user("alice@example.com")
    make_user("bob@example.com")
    make_user("viewer-9@example.com", source=User.Source.SIMULATED, external_id="9")

    by_email = staff_client.get("/admin/accounts/user/", {"q": "alice@"})
    simulated = staff_client.get("/admin/accounts/user/", {"source__exact": "simulated"})

    assert by_email.status_code == 200
    assert [u.email for u in by_email.context["cl"].result_list] == ["alice@example.com"]
    assert [u.email for u in simulated.context["cl"].result_list] == ["viewer-9@example.com"]


def test_staff_can_open_a_user_and_add_one_by_email(staff_client):
    alice = make_user("alice@example.com")
    assert staff_client.get(f"/admin/accounts/user/{alice.pk}/change/").status_code == 200

    response = staff_client.post(
        "/admin/accounts/user/add/",
        {"email": "added@example.com", "usable_password": "true", "password1": "Xy-long-pass-42", "password2": "Xy-long-pass-42"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    added = User.objects.get(email="added@example.com")
    assert added.username == "added@example.com"
    assert added.check_password("Xy-long-pass-42")
    assert added.source == User.Source.SITE


def test_signup_username_follows_the_email(client):
    client.post(
        reverse("account_signup"),
        {"email": "Mixed.Case@Example.com", "password1": DEFAULT_PASSWORD, "password2": DEFAULT_PASSWORD},
    )

    assert User.objects.get().username == "mixed.case@example.com"


def test_staff_reach_the_admin(staff_client):
    response = staff_client.get("/admin/")

    assert response.status_code == 200
    assert b"/admin/accounts/user/" in response.content


# --- API tokens on the profile -------------------------------------------------------------------


def token_works(token) -> bool:
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/v1/me/").status_code == 200


def test_profile_lists_live_api_tokens_by_their_first_characters_only(client, alice, bob):
    from datetime import timedelta

    from knox.models import AuthToken

    from accounts.services import issue_api_token

    _, older = issue_api_token(user=alice)
    _, newer = issue_api_token(user=alice)
    expired, expired_token = issue_api_token(user=alice)
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(minutes=1))
    _, bobs = issue_api_token(user=bob)

    html = client.get(reverse("accounts:profile")).content.decode()

    assert f"<code>{newer[:8]}…</code>" in html and f"<code>{older[:8]}…</code>" in html
    assert html.index(newer[:8]) < html.index(older[:8]), "newest first"
    for secret in (older, newer):
        assert secret not in html, "the page never shows a whole token"
    assert expired_token[:8] not in html
    assert bobs[:8] not in html
    assert "Revoke all 2 tokens" in html


def test_profile_without_tokens_says_so(client, alice):
    html = client.get(reverse("accounts:profile")).content.decode()

    assert "No program holds a token for your account." in html


def test_revoking_a_token_from_the_profile_stops_it_and_no_other(client, alice):
    from knox.models import AuthToken

    from accounts.services import issue_api_token

    revoked, revoked_token = issue_api_token(user=alice)
    _, kept_token = issue_api_token(user=alice)

    response = client.post(reverse("accounts:revoke_tokens"), {"token": revoked.digest}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("accounts:profile") + "#api-tokens"
    assert "1 API token revoked" in response.content.decode()
    assert not token_works(revoked_token)
    assert token_works(kept_token)
    assert AuthToken.objects.filter(user=alice).count() == 1


def test_revoke_all_stops_every_token_of_the_user_only(client, alice, bob):
    from accounts.services import issue_api_token

    mine = [issue_api_token(user=alice)[1] for _ in range(3)]
    _, bobs = issue_api_token(user=bob)

    response = client.post(reverse("accounts:revoke_tokens"), {"all": "1"}, follow=True)

    assert "3 API tokens revoked" in response.content.decode()
    assert not any(token_works(token) for token in mine)
    assert token_works(bobs)


def test_a_user_cannot_revoke_someone_elses_token(client, alice, bob):
    from accounts.services import issue_api_token

    bobs_row, bobs = issue_api_token(user=bob)

    response = client.post(reverse("accounts:revoke_tokens"), {"token": bobs_row.digest}, follow=True)

    assert "already revoked or had expired" in response.content.decode()
    assert token_works(bobs)


def test_revoking_needs_a_post_and_a_signed_in_user(client, bob):
    from accounts.services import issue_api_token

    row, token = issue_api_token(user=bob)

    assert client.get(reverse("accounts:revoke_tokens"), {"token": row.digest}).status_code in (302, 405)
    assert client.post(reverse("accounts:revoke_tokens"), {"all": "1"}).url.startswith(reverse("account_login"))
    assert token_works(token)


# --- Occupation from a list; birth year bounded in the form -------------------------------------------


def test_profile_offers_occupations_from_a_list(client, alice):
    form = client.get(reverse("accounts:profile")).context["form"]

    values = [value for value, _ in form.fields["occupation"].choices]
    assert values[0] == "" and "programmer" in values and "librarian" in values
    assert len(values) == 21


def test_profile_refuses_an_occupation_not_on_the_list(client, alice):
    response = client.post(reverse("accounts:profile"), {"birth_year": "", "gender": "", "occupation": "secret-job", "country": ""})

    assert response.status_code == 400
    assert response.context["form"].errors["occupation"]
    alice.refresh_from_db()
    assert alice.occupation == ""


def test_an_occupation_typed_before_the_list_is_kept_when_saving_other_fields(client, alice):
    User.objects.filter(pk=alice.pk).update(occupation="luthier")

    page = client.get(reverse("accounts:profile")).content.decode()
    response = client.post(reverse("accounts:profile"), {"birth_year": "1980", "gender": "", "occupation": "luthier", "country": ""})

    assert '<option value="luthier" selected>luthier</option>' in page
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.occupation, alice.birth_year) == ("luthier", 1980)


def test_the_api_refuses_an_occupation_not_on_the_list(alice):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(alice)

    refused = api.patch("/api/v1/me/", {"occupation": "secret-job", "country": "Peru"}, format="json")
    accepted = api.patch("/api/v1/me/", {"occupation": "writer"}, format="json")

    assert refused.status_code == 400 and list(refused.json()["error"]["fields"]) == ["occupation"]
    assert accepted.status_code == 200
    alice.refresh_from_db()
    assert (alice.occupation, alice.country) == ("writer", "")


def test_the_birth_year_box_allows_only_1900_to_this_year(client, alice):
    html = client.get(reverse("accounts:profile")).content.decode()

    field = re.search(r'<input[^>]*name="birth_year"[^>]*>', html).group(0)
    assert 'type="number"' in field
    assert 'min="1900"' in field
    assert f'max="{timezone.now().year}"' in field
