"""Who may write what: every write endpoint tried as another user and anonymously.

The API's /me/ endpoints act on the signed-in account only; a user or id in the body is ignored.
So "another user" trying a write either changes only their own data or gets 403/404, and the
victim's data is the same afterwards. The catalogue is written by staff only.
"""
import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.services import issue_api_token
from catalog.models import Movie, NotInterested, Rating, WatchlistEntry
from recommendations.group_services import create_group, create_invitation
from recommendations.models import WatchGroup, WatchGroupInvitation, WatchGroupMember
from recommendations.models import DiscoveryPreference
from tests.factories import DEFAULT_PASSWORD, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db

# Every write operation of the API: (method, path with {movie} for a movie id, JSON body, what
# another signed-in user gets: a refusal, or None when the write acts on their own account).
# test_every_write_endpoint_is_covered keeps this list complete.
WRITE_ENDPOINTS = [
    ("post", "/api/v1/me/ratings/", {"movie": "{movie}", "score": 0.5, "user": "{victim}"}, None),
    ("post", "/api/v1/me/ratings/bulk/", {"ratings": [{"movie": "{movie}", "score": 0.5}], "user": "{victim}"}, None),
    ("put", "/api/v1/me/ratings/{movie}/", {"score": 0.5, "user": "{victim}"}, None),
    ("delete", "/api/v1/me/ratings/{movie}/", None, 404),
    ("post", "/api/v1/me/watchlist/", {"movie": "{movie}", "user": "{victim}"}, None),
    ("delete", "/api/v1/me/watchlist/{movie}/", None, 404),
    ("post", "/api/v1/me/not-interested/", {"movie": "{movie}", "user": "{victim}"}, None),
    ("delete", "/api/v1/me/not-interested/{movie}/", None, 404),
    ("patch", "/api/v1/me/", {"id": "{victim}", "country": "Nowhere", "birth_year": 1901}, None),
    ("post", "/api/v1/me/delete/", {"confirmation": DEFAULT_PASSWORD, "user": "{victim}"}, 400),
    ("delete", "/api/v1/auth/token/", None, None),
    ("put", "/api/v1/me/discovery/", {"level": 4, "user": "{victim}"}, None),
    ("post", "/api/v1/movies/", {"title": "Intruder"}, 403),
    ("put", "/api/v1/movies/{movie}/", {"title": "Intruder"}, 403),
    ("patch", "/api/v1/movies/{movie}/", {"title": "Intruder"}, 403),
    ("delete", "/api/v1/movies/{movie}/", None, 403),
    # Watch together: the victim's group is invisible to anyone outside it.
    ("post", "/api/v1/groups/", {"name": "Mallory's", "member_name": "Mallory"}, None),
    ("post", "/api/v1/groups/join/", {"token": "a-guessed-token", "member_name": "Mallory"}, 400),
    ("patch", "/api/v1/groups/{group_id}/", {"strategy": "least_misery"}, 404),
    ("delete", "/api/v1/groups/{group_id}/", None, 404),
    ("post", "/api/v1/groups/{group_id}/invitations/", {"days": 1}, 404),
    ("delete", "/api/v1/groups/{group_id}/invitations/{invitation_id}/", None, 404),
    ("post", "/api/v1/groups/{group_id}/guests/", {"name": "Ghost"}, 404),
    ("delete", "/api/v1/groups/{group_id}/members/{member_id}/", None, 404),
]
IDS = [f"{method} {path}" for method, path, _, _ in WRITE_ENDPOINTS]
ATTACKER_PASSWORD = "mallory-Own-passw0rd"
# Sign-in is the one write meant for anonymous clients.
ANONYMOUS_WRITES = {("post", "/api/v1/auth/token/")}


def _fill(value, movie, victim):
    if isinstance(value, str):
        value = value.replace("{movie}", str(movie.pk)).replace("{victim}", str(victim.pk))
        if "{group_id}" in value:
            invitation = WatchGroupInvitation.objects.get(created_by=victim)
            member = WatchGroupMember.objects.get(user=victim)
            value = value.replace("{group_id}", str(member.group_id)).replace(
                "{invitation_id}", str(invitation.pk)).replace("{member_id}", str(member.pk))
        return value
    if isinstance(value, list):
        return [_fill(item, movie, victim) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, movie, victim) for key, item in value.items()}
    return value


def _as_number(value):
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _request(client, method, path, body, movie, victim):
    data = _fill(body, movie, victim)
    if isinstance(data, dict):
        data = {key: _as_number(value) for key, value in data.items()}
        if "ratings" in data:
            data["ratings"] = [{k: _as_number(v) for k, v in item.items()} for item in data["ratings"]]
    return getattr(client, method)(_fill(path, movie, victim), data, format="json")


@pytest.fixture
def victim_world():
    """A victim with a rating, watchlist entry, hidden movie, profile, discovery setting and token."""
    victim = make_user("victim@example.com", country="Iceland", birth_year=1980)
    movie = make_movie("Victim's favourite", year=1999)
    make_rating(victim, movie, 5.0)
    WatchlistEntry.objects.create(user=victim, movie=movie)
    NotInterested.objects.create(user=victim, movie=movie)
    token, _ = issue_api_token(user=victim)
    group = create_group(owner=victim, name="Victim's group", member_name="Victim")
    create_invitation(group, by=victim)
    DiscoveryPreference.objects.create(user=victim, level=1)
    return victim, movie, token


def victim_state(victim, movie) -> dict:
    victim.refresh_from_db()
    movie.refresh_from_db()
    return {
        "ratings": list(Rating.objects.filter(user=victim).values_list("movie_id", "score")),
        "watchlist": list(WatchlistEntry.objects.filter(user=victim).values_list("movie_id", flat=True)),
        "hidden": list(NotInterested.objects.filter(user=victim).values_list("movie_id", flat=True)),
        "profile": (victim.email, victim.country, victim.birth_year),
        "tokens": list(AuthToken.objects.filter(user=victim).values_list("digest", flat=True)),
        "discovery": list(DiscoveryPreference.objects.filter(user=victim).values_list("level", flat=True)),
        "movie": (movie.title, movie.year),
        "groups": list(WatchGroup.objects.filter(members__user=victim).values_list("name", "strategy", "owner_id")),
        "group_members": list(WatchGroupMember.objects.filter(group__owner=victim).values_list("user_id", "name")),
        "invitations": list(WatchGroupInvitation.objects.filter(group__owner=victim).values_list("pk", "revoked_at")),
    }


def test_every_write_endpoint_is_covered():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    writes = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    }
    listed = {(method, path.replace("{movie}", "{id}")) for method, path, _, _ in WRITE_ENDPOINTS}
    normalised = {(method, path.replace("{movie_id}", "{id}")) for method, path in writes}

    assert normalised - ANONYMOUS_WRITES == listed


@pytest.mark.parametrize("method,path,body,refusal", WRITE_ENDPOINTS, ids=IDS)
def test_another_user_cannot_change_the_victims_data(victim_world, method, path, body, refusal):
    victim, movie, _ = victim_world
    before = victim_state(victim, movie)
    attacker = make_user("mallory@example.com", password=ATTACKER_PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(user=attacker)[1]}")

    response = _request(client, method, path, body, movie, victim)

    if refusal is None:
        assert 200 <= response.status_code < 300
    else:
        assert response.status_code == refusal
    assert victim_state(victim, movie) == before


@pytest.mark.parametrize("method,path,body,refusal", WRITE_ENDPOINTS, ids=IDS)
def test_anonymous_clients_cannot_write(victim_world, method, path, body, refusal):
    victim, movie, _ = victim_world
    before = victim_state(victim, movie)

    response = _request(APIClient(), method, path, body, movie, victim)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert victim_state(victim, movie) == before


def test_an_invalid_token_is_refused_on_writes(victim_world):
    victim, movie, _ = victim_world
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": 1}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_user_reads_only_their_own_ratings_and_lists(victim_world):
    victim, movie, _ = victim_world
    other = APIClient()
    other.force_authenticate(make_user())

    assert other.get("/api/v1/me/ratings/").json()["count"] == 0
    assert other.get(f"/api/v1/me/ratings/{movie.pk}/").status_code == 404
    assert other.get("/api/v1/me/watchlist/").json()["count"] == 0
    assert other.get("/api/v1/me/not-interested/").json()["count"] == 0
    export = other.get("/api/v1/me/export/").json()
    assert export["ratings"] == [] and export["profile"]["email"] != victim.email
    assert other.get(f"/api/v1/movies/{movie.pk}/").json()["my_rating"] is None


def test_writes_by_another_user_land_on_their_own_account(victim_world):
    victim, movie, _ = victim_world
    intruder = make_user()
    client = APIClient()
    client.force_authenticate(intruder)

    client.post("/api/v1/me/ratings/", {"movie": movie.pk, "score": 1, "user": victim.pk}, format="json")
    client.patch("/api/v1/me/", {"id": victim.pk, "country": "Nowhere"}, format="json")

    assert Rating.objects.get(user=intruder, movie=movie).score == 1.0
    assert Rating.objects.get(user=victim, movie=movie).score == 5.0
    intruder.refresh_from_db()
    victim.refresh_from_db()
    assert (intruder.country, victim.country) == ("Nowhere", "Iceland")


def test_staff_write_the_catalogue_and_the_admin_is_for_staff_only(victim_world):
    _, movie, _ = victim_world
    staff = APIClient()
    staff.force_authenticate(make_user(is_staff=True))

    assert staff.patch(f"/api/v1/movies/{movie.pk}/", {"year": 2000}, format="json").status_code == 200
    assert Movie.objects.get(pk=movie.pk).year == 2000
    browser = APIClient()
    browser.force_login(make_user())
    assert browser.get(reverse("admin:catalog_movie_changelist")).status_code == 302


# --- Content security policy -------------------------------------------------------------------------


def test_html_pages_carry_a_content_security_policy(client):
    response = client.get("/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_the_admin_login_page_carries_the_policy(client):
    response = client.get(reverse("admin:login"), follow=True)  # staff sign in on the site's login page

    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_api_docs_are_self_hosted_and_allowed_by_their_policy(client):
    response = client.get("/api/v1/docs/")
    script = client.get("/api/v1/docs/", {"script": ""})

    page = response.content.decode()
    assert response.status_code == 200
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in page  # the start-up script is loaded from the same origin
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def test_json_answers_do_not_need_a_policy(client):
    response = client.get("/api/v1/genres/")

    assert response["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in response
