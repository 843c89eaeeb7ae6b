"""Signing in and out of the REST API, sessions for the site's pages, and throttling."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, make_movie, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def sign_in(client, email, password=DEFAULT_PASSWORD):
    return client.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json")


def with_rates(settings, **rates):
    """Change some throttle rates for this test (anon, user, login)."""
    config = dict(settings.REST_FRAMEWORK)
    config["DEFAULT_THROTTLE_RATES"] = {**config["DEFAULT_THROTTLE_RATES"], **rates}
    settings.REST_FRAMEWORK = config


def test_signing_in_returns_a_token_that_authenticates_requests(api):
    user = make_user("reader@example.com")

    response = sign_in(api, "reader@example.com")

    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").json()["email"] == "reader@example.com"
    user.refresh_from_db()
    assert user.last_login is not None


def test_signing_in_twice_gives_the_same_token(api):
    make_user("reader@example.com")

    assert sign_in(api, "reader@example.com").json() == sign_in(api, "reader@example.com").json()


def test_email_is_matched_without_regard_to_case(api):
    make_user("reader@example.com")

    assert sign_in(api, "Reader@Example.com").status_code == 200


def test_a_wrong_password_is_refused_without_a_token(api):
    make_user("reader@example.com")

    response = sign_in(api, "reader@example.com", "wrong password")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "email address and password" in response.json()["error"]["message"]
    assert not Token.objects.exists()


def test_an_unverified_email_cannot_get_a_token(api):
    make_user("new@example.com", verified=False)

    response = sign_in(api, "new@example.com")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_not_verified"
    assert not Token.objects.exists()


def test_an_imported_movielens_user_cannot_sign_in(api):
    imported = User.objects.create_user(
        email="ml-7@movielens.invalid", password=None, source=User.Source.MOVIELENS, external_id="7"
    )

    assert sign_in(api, imported.email, "").status_code == 400
    assert sign_in(api, imported.email, "anything").status_code == 400


def test_missing_credentials_name_the_fields(api):
    response = api.post("/api/v1/auth/token/", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email", "password"}


def test_signing_out_deletes_the_token(api):
    make_user("reader@example.com")
    token = sign_in(api, "reader@example.com").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert api.delete("/api/v1/auth/token/").status_code == 204

    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not Token.objects.exists()


def test_anonymous_requests_to_my_data_get_401_with_the_token_challenge(api):
    response = api.get("/api/v1/me/ratings/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "fields": {},
    }


def test_the_sites_session_authenticates_and_writes_need_the_csrf_token():
    user = make_user()
    movie = make_movie()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.get("/api/v1/me/").status_code == 200
    refused = client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": 4}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]

    csrf = "k" * 32  # what the site's pages carry: the CSRF cookie and the same secret in a header
    client.cookies["csrftoken"] = csrf
    accepted = client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": 4}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 201


def test_signing_out_of_a_session_ends_it():
    client = APIClient()
    client.force_login(make_user())

    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401


# --- Throttling --------------------------------------------------------------------------------


def test_sign_in_attempts_are_throttled_per_address(api, settings):
    with_rates(settings, login="3/min")
    make_user("reader@example.com")

    answers = [sign_in(api, "reader@example.com").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    throttled = sign_in(api, "reader@example.com")
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    other_address = APIClient(REMOTE_ADDR="10.0.0.2")
    assert sign_in(other_address, "reader@example.com").status_code == 200


def test_repeated_wrong_passwords_lock_the_account_out_for_a_while(api):
    make_user("reader@example.com")

    failures = [sign_in(api, "reader@example.com", f"guess {i}").status_code for i in range(5)]
    locked = sign_in(api, "reader@example.com")

    assert failures == [400] * 5
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "throttled"
    assert not Token.objects.exists()


def test_anonymous_clients_are_throttled(api, settings):
    with_rates(settings, anon="3/min")

    answers = [api.get("/api/v1/genres/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    assert api.get("/api/v1/genres/").json()["error"]["code"] == "throttled"


def test_signed_in_clients_are_throttled_per_account(settings):
    with_rates(settings, user="3/min")
    first, second = APIClient(), APIClient()
    first.force_authenticate(make_user())
    second.force_authenticate(make_user())

    answers = [first.get("/api/v1/me/").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    assert second.get("/api/v1/me/").status_code == 200


def test_a_forged_forwarded_for_header_does_not_escape_the_sign_in_throttle(api, settings):
    with_rates(settings, login="3/min")
    make_user("reader@example.com")

    answers = [
        api.post(
            "/api/v1/auth/token/",
            {"email": "reader@example.com", "password": DEFAULT_PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
        ).status_code
        for attempt in range(4)
    ]

    assert answers == [200, 200, 200, 429]
