"""Signing in and out of the REST API, the tokens' life, sessions for the site's pages, and throttling."""
import importlib
import re
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken as Token
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import issue_api_token, revoke_api_tokens
from movierec import api as movierec_api
from tests.factories import DEFAULT_PASSWORD, make_movie, make_user

NEW_PASSWORD = "another-Strong-passw0rd"

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


def works(token) -> bool:
    """Whether the token authenticates a request to /api/v1/me/."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/me/").status_code == 200


def test_signing_in_returns_a_token_that_authenticates_requests(api):
    user = make_user("reader@example.com")

    response = sign_in(api, "reader@example.com")

    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").json()["email"] == "reader@example.com"
    user.refresh_from_db()
    assert user.last_login is not None


def test_a_token_is_valid_for_the_configured_lifetime_and_says_until_when(api, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(days=7)}
    make_user("reader@example.com")

    body = sign_in(api, "reader@example.com").json()

    expiry = timezone.datetime.fromisoformat(body["expiry"])
    assert abs(expiry - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_an_expired_token_stops_working(api, monkeypatch):
    # Remembered far longer than its life, so only its expiry can refuse it.
    monkeypatch.setattr(movierec_api, "RECENT_TOKEN_SECONDS", 60)
    make_user("reader@example.com")
    token = sign_in(api, "reader@example.com").json()["token"]
    expiry = timezone.now() + timedelta(seconds=1)
    Token.objects.update(expiry=expiry)
    assert works(token)

    time.sleep(max(0.0, (expiry - timezone.now()).total_seconds()) + 0.05)

    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not Token.objects.exists(), "knox deletes the expired token"


def _revoke_elsewhere(token_row) -> None:
    """Delete the token as another worker process would: no signal reaches this one."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(Token._meta.db_table)} WHERE digest = %s",
                       [token_row.digest])


def test_a_token_revoked_in_another_process_reads_for_at_most_a_second_and_never_writes(api):
    user = make_user("reader@example.com")
    row, token = issue_api_token(user=user)
    assert works(token)  # accepted by knox, remembered by this process

    _revoke_elsewhere(row)

    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.put("/api/v1/me/discovery/", {"level": 3}, format="json").status_code == 401, \
        "a write always asks knox"
    assert works(token), "a read within RECENT_TOKEN_SECONDS of knox's answer is still let in"
    time.sleep(movierec_api.RECENT_TOKEN_SECONDS + 0.05)
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_token_revoked_or_an_account_deactivated_in_this_process_is_refused_at_once(api):
    user = make_user("reader@example.com")
    _, first = issue_api_token(user=user)
    _, second = issue_api_token(user=user)
    assert works(first) and works(second)

    revoke_api_tokens(user=user, digest=hash_token(first))
    assert not works(first)
    assert works(second)

    user.is_active = False
    user.save(update_fields=["is_active"])
    assert not works(second)


def test_remembered_tokens_are_bounded_and_keyed_by_digest():
    recent = movierec_api.RecentTokens(size=3)
    user = make_user("reader@example.com")
    issued = [issue_api_token(user=user) for _ in range(5)]
    for row, token in issued:
        recent.remember(hash_token(token), user, row)
    assert len(recent._entries) == 3
    assert set(recent._entries) == {row.digest for row, _ in issued[2:]}, "the newest, by digest"
    assert recent.get(issued[0][0].digest) is None
    found_user, found_row = recent.get(issued[4][0].digest)
    assert (found_user.pk, found_row.pk) == (user.pk, issued[4][0].pk)
    assert found_user is not user and found_row.user is found_user, "each request gets its own copies"


def test_each_sign_in_gets_a_new_token(api):
    make_user("reader@example.com")

    first = sign_in(api, "reader@example.com").json()["token"]
    second = sign_in(api, "reader@example.com").json()["token"]

    assert first != second
    assert works(first) and works(second), "each program or device keeps its own token"


def test_tokens_are_stored_only_as_hashes(api):
    make_user("reader@example.com")

    token = sign_in(api, "reader@example.com").json()["token"]

    stored = Token.objects.get()
    assert token not in (stored.digest, stored.token_key)
    assert len(token) >= 64


def test_signing_in_past_the_per_account_limit_revokes_the_oldest_tokens(settings):
    settings.API_TOKENS_PER_USER = 3
    reader = make_user("reader@example.com")

    tokens = [issue_api_token(user=reader)[1] for _ in range(5)]  # what each sign-in does

    assert [works(token) for token in tokens] == [False, False, True, True, True]
    assert Token.objects.count() == 3


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


@pytest.mark.parametrize("source", [User.Source.MOVIELENS, User.Source.SIMULATED])
def test_an_imported_user_cannot_get_a_token_even_with_a_password_set_by_staff(api, source):
    make_user(f"{source}@example.com", source=source, external_id="42")

    response = sign_in(api, f"{source}@example.com")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_inactive"
    assert not Token.objects.exists()


def test_missing_credentials_name_the_fields(api):
    response = api.post("/api/v1/auth/token/", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email", "password"}


def test_signing_out_revokes_the_token_used_and_no_other(api):
    make_user("reader@example.com")
    token = sign_in(api, "reader@example.com").json()["token"]
    other_device = sign_in(api, "reader@example.com").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert api.delete("/api/v1/auth/token/").status_code == 204

    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert works(other_device)
    assert Token.objects.count() == 1


# --- What revokes every token: password change or reset, signing out of the website ----------------


@pytest.fixture
def reader_tokens(api):
    """A verified reader with two API tokens (two programs)."""
    reader = make_user("reader@example.com")
    tokens = [sign_in(api, "reader@example.com").json()["token"] for _ in range(2)]
    assert all(works(token) for token in tokens)
    return reader, tokens


def test_changing_the_password_on_the_website_revokes_every_token(client, reader_tokens):
    reader, tokens = reader_tokens
    client.force_login(reader)

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert not any(works(token) for token in tokens)
    assert not Token.objects.exists()


def test_resetting_the_password_by_email_link_revokes_every_token(client, mailoutbox, reader_tokens):
    _, tokens = reader_tokens

    client.post(reverse("account_reset_password"), {"email": "reader@example.com"})
    link = re.search(r"https?://testserver(/accounts/password/reset/key/\S+)", mailoutbox[0].body).group(1)
    set_password_page = client.get(link, follow=True).redirect_chain[-1][0]
    response = client.post(set_password_page, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert not any(works(token) for token in tokens)


def test_staff_setting_a_new_password_in_the_admin_revokes_every_token(client, reader_tokens):
    reader, tokens = reader_tokens
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))

    response = client.post(
        f"/admin/accounts/user/{reader.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert not any(works(token) for token in tokens)


def test_signing_out_of_the_website_revokes_every_token(client, reader_tokens):
    reader, tokens = reader_tokens
    client.force_login(reader)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert not any(works(token) for token in tokens)


def test_a_password_hash_upgrade_at_sign_in_revokes_nothing(api, reader_tokens):
    reader, tokens = reader_tokens
    weaker = PBKDF2PasswordHasher().encode(DEFAULT_PASSWORD, "saltsaltsalt", iterations=1000)
    User.objects.filter(pk=reader.pk).update(password=weaker)

    assert sign_in(api, "reader@example.com").status_code == 200

    reader.refresh_from_db()
    assert reader.password != weaker, "Django upgraded the hash"
    assert all(works(token) for token in tokens)


# --- Tokens from before knox (DRF's authtoken) ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_tokens_issued_before_the_move_to_knox_keep_working_for_one_lifetime():
    migration = importlib.import_module("accounts.migrations.0002_drf_tokens_to_knox")
    reader = make_user("reader@example.com")
    old_key = "0123456789abcdef0123456789abcdef01234567"  # DRF's tokens: 40 hex digits, stored as they are
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id bigint)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, timezone.now(), reader.pk])

    with connection.schema_editor() as editor:
        migration.move_drf_tokens_to_knox(apps, editor)

    assert works(old_key)
    stored = Token.objects.get(user=reader)
    assert old_key not in (stored.digest, stored.token_key)
    assert abs(stored.expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert "authtoken_token" not in connection.introspection.table_names()


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


def test_signing_out_of_a_session_ends_it_and_revokes_every_token():
    user = make_user()
    _, token = issue_api_token(user=user)
    client = APIClient()
    client.force_login(user)

    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert not works(token)


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


def test_on_redis_the_throttle_is_the_same_sliding_window_and_lets_requests_through_when_redis_is_down(
        settings, private_redis, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    with_rates(settings, user="3/min", anon="2/min")
    first, second = APIClient(), APIClient()
    first.force_authenticate(make_user())
    second.force_authenticate(make_user())
    now = [1000.0]
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: now[0])

    answers = [first.get("/api/v1/me/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "throttled"
    assert int(answers[-1]["Retry-After"]) == 60, "the oldest of the 3 requests leaves the window in 60 s"
    assert second.get("/api/v1/me/").status_code == 200, "per account"
    assert [APIClient().get("/api/v1/genres/").status_code for _ in range(3)] == [200, 200, 429]
    keys = list(private_redis_client(private_redis).scan_iter(match="*throttle_user*"))
    assert keys and {private_redis_client(private_redis).type(key) for key in keys} == {b"zset"}, "one sorted set"

    now[0] += 61  # the window slides past all three
    assert first.get("/api/v1/me/").status_code == 200
    private_redis.kill()
    assert [first.get("/api/v1/me/").status_code for _ in range(4)] == [200] * 4, "fails open"


def private_redis_client(server):
    import redis

    return redis.Redis.from_url(server.url)
