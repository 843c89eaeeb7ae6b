"""Accounts: sign-up with mandatory email verification, sign-in, passwords, rate limits, imported users."""
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.factories import DEFAULT_PASSWORD, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()
NEW_PASSWORD = "another-Strong-passw0rd"


def link_in(message, path_prefix):
    """The path of the first link in an email whose path starts with path_prefix."""
    match = re.search(r"https?://testserver(" + re.escape(path_prefix) + r"\S+)", message.body)
    assert match, f"no {path_prefix} link in:\n{message.body}"
    return match.group(1)


def sign_up(client, email, password=DEFAULT_PASSWORD):
    return client.post(reverse("account_signup"), {"email": email, "password1": password, "password2": password})


def log_in(client, email, password=DEFAULT_PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def logged_in_user_id(client):
    return client.session.get("_auth_user_id")


def test_signup_sends_a_verification_email_whose_link_verifies_the_address_and_signs_in(client, mailoutbox):
    response = sign_up(client, "new.viewer@example.com")

    assert response.status_code == 302
    user = User.objects.get(email="new.viewer@example.com")
    assert user.source == User.Source.SITE
    assert logged_in_user_id(client) is None, "nobody is signed in before the email is verified"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.viewer@example.com"]
    assert mailoutbox[0].subject.startswith("[movierec] ")
    assert "Hello from movierec!" in mailoutbox[0].body

    confirm_path = link_in(mailoutbox[0], "/accounts/confirm-email/")
    assert client.get(confirm_path).status_code == 200, "the link opens a confirmation page"
    response = client.post(confirm_path)
    assert response.status_code == 302
    assert user.emailaddress_set.get().verified
    assert logged_in_user_id(client) == str(user.pk), "confirming signs the new user in"
    assert response.url == reverse("onboarding:start"), "a new user starts by telling their tastes"


def test_confirming_the_email_in_another_browser_verifies_it_without_signing_in(client, mailoutbox):
    from django.test import Client

    sign_up(client, "new.viewer@example.com")
    other_browser = Client()

    other_browser.post(link_in(mailoutbox[0], "/accounts/confirm-email/"))

    assert User.objects.get(email="new.viewer@example.com").emailaddress_set.get().verified
    assert other_browser.session.get("_auth_user_id") is None
    log_in(other_browser, "new.viewer@example.com")
    assert other_browser.session.get("_auth_user_id") is not None


def test_login_before_verifying_the_email_is_refused_and_sends_the_verification_link(client, mailoutbox):
    make_user("impatient@example.com", verified=False)

    response = log_in(client, "impatient@example.com")

    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert logged_in_user_id(client) is None
    assert len(mailoutbox) == 1
    link_in(mailoutbox[0], "/accounts/confirm-email/")


def test_two_people_can_sign_up_one_after_the_other(client, mailoutbox):
    sign_up(client, "first@example.com")
    sign_up(client, "second@example.com")

    assert set(User.objects.values_list("email", flat=True)) == {"first@example.com", "second@example.com"}
    assert len(mailoutbox) == 2


def test_signup_with_an_email_already_registered_is_a_form_error_and_creates_nothing(client, mailoutbox):
    make_user("taken@example.com")

    response = sign_up(client, "Taken@Example.com")

    assert response.status_code == 200
    assert "A user is already registered with this email address." in response.content.decode()
    assert User.objects.count() == 1
    assert mailoutbox == []


def test_signup_with_a_weak_password_is_a_form_error(client):
    response = sign_up(client, "weak@example.com", password="12345678")

    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert not User.objects.filter(email="weak@example.com").exists()


def test_password_reset_email_link_lets_the_user_set_a_new_password_and_log_in_with_it(client, mailoutbox):
    user = make_user("forgetful@example.com")

    response = client.post(reverse("account_reset_password"), {"email": "forgetful@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["forgetful@example.com"]

    response = client.get(link_in(mailoutbox[0], "/accounts/password/reset/key/"), follow=True)
    set_password_path = response.redirect_chain[-1][0]
    response = client.post(set_password_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    assert log_in(client, "forgetful@example.com", DEFAULT_PASSWORD).status_code == 200, "old password refused"
    assert logged_in_user_id(client) is None
    log_in(client, "forgetful@example.com", NEW_PASSWORD)
    assert logged_in_user_id(client) == str(user.pk)


def test_password_reset_answers_the_same_whether_or_not_an_email_has_an_account(client, mailoutbox):
    make_user("known@example.com")

    known = client.post(reverse("account_reset_password"), {"email": "known@example.com"})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})

    assert (known.status_code, unknown.status_code) == (302, 302)
    assert known.url == unknown.url == reverse("account_reset_password_done")
    assert "not assigned" not in client.get(unknown.url).content.decode()
    assert [m.to for m in mailoutbox] == [["known@example.com"], ["nobody@example.com"]]
    assert "do not have any record of such an account" in mailoutbox[1].body, "only the mailbox owner learns it"


def test_password_change_needs_the_current_password(client):
    user = make_user("changer@example.com")
    client.force_login(user)
    url = reverse("account_change_password")

    response = client.post(url, {"oldpassword": "wrong-password", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)

    response = client.post(url, {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_wrong_password_is_a_form_error(client):
    make_user("someone@example.com")

    response = log_in(client, "someone@example.com", "not-the-password")

    assert response.status_code == 200
    assert "The email address and/or password you specified are not correct." in response.content.decode()
    assert logged_in_user_id(client) is None


def test_after_too_many_failed_logins_even_the_right_password_is_refused(client):
    make_user("target@example.com")
    allowed_failures = int(settings.ACCOUNT_RATE_LIMITS["login_failed"].split("/")[0])

    for _ in range(allowed_failures):
        response = log_in(client, "target@example.com", "guess")
        assert "not correct" in response.content.decode()
    response = log_in(client, "target@example.com", DEFAULT_PASSWORD)

    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert logged_in_user_id(client) is None


@pytest.mark.parametrize("source", [User.Source.MOVIELENS, User.Source.SIMULATED])
def test_imported_users_cannot_log_in_even_with_a_password(client, source):
    imported = make_user(f"{source}@example.com", source=source, external_id="42")

    response = client.post(reverse("account_login"), {"login": imported.email, "password": DEFAULT_PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("account_inactive")
    assert "nobody can sign in to them" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_imported_users_created_without_password_have_an_unusable_one(client):
    imported = User.objects.create_user(email="ml-7@example.com", source=User.Source.MOVIELENS, external_id="7")

    assert not imported.has_usable_password()
    log_in(client, "ml-7@example.com", "")
    assert logged_in_user_id(client) is None


def test_password_reset_never_mails_an_imported_user(client, mailoutbox):
    make_user("simulated@example.com", source=User.Source.SIMULATED, external_id="3")

    client.post(reverse("account_reset_password"), {"email": "simulated@example.com"})

    assert mailoutbox == []


def test_account_pages_use_the_site_layout(client):
    response = client.get(reverse("account_login"))

    assert response.status_code == 200
    assert [t.name for t in response.templates][:1] == ["account/login.html"]
    assert "base.html" in [t.name for t in response.templates]
    assert re.search(r"<title>\s*Sign In\s*· movierec</title>", response.content.decode())


# --- Staff sign in through the same throttled flow -------------------------------------------


def test_the_admin_login_sends_staff_to_the_sites_login(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response.url == reverse("account_login") + "?next=%2Fadmin%2F"


def test_posting_credentials_to_the_admin_login_signs_nobody_in(client):
    make_user("staff@example.com", is_staff=True)

    response = client.post("/admin/login/", {"username": "staff@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert logged_in_user_id(client) is None


def test_fifteen_wrong_admin_passwords_then_the_right_one_hit_the_rate_limit(client):
    make_user("staff@example.com", is_staff=True, is_superuser=True)
    login_page = client.get("/admin/login/?next=/admin/").url

    for attempt in range(15):
        client.post(login_page, {"login": "staff@example.com", "password": f"guess {attempt}"})
    response = client.post(login_page, {"login": "staff@example.com", "password": DEFAULT_PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert logged_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302


def test_staff_signed_in_on_the_site_reach_the_admin_and_others_are_refused(client):
    staff = make_user("staff@example.com", is_staff=True)
    response = client.post(reverse("account_login") + "?next=/admin/", {"login": staff.email, "password": DEFAULT_PASSWORD})
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == 200

    client.force_login(make_user("visitor@example.com"))
    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_the_admin_index_has_one_accounts_section(client):
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))

    sections = re.findall(r'class="section"[^>]*>([^<]+)<', client.get("/admin/").content.decode())

    assert sections.count("Accounts") == 1
    assert len(sections) == len(set(sections))


def test_the_user_admin_shows_email_addresses_and_api_tokens_inline(client):
    from accounts.services import issue_api_token

    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    reader = make_user("reader@example.com")
    _, token = issue_api_token(user=reader)

    html = client.get(f"/admin/accounts/user/{reader.pk}/change/").content.decode()

    assert "reader@example.com" in html and "Verified" in html
    assert f"{token[:8]}…" in html and token not in html
