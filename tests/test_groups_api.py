"""Watch together through the REST API: groups, the list with everyone's predictions (and nobody's
ratings), invitations, guests, members, and the API's JSON error body."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from recommendations.models import WatchGroup, WatchGroupGuestFilm, WatchGroupMember
from tests.factories import make_user
from tests.groups_data import horror_guest_file, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_world()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def keys_of(value) -> set:
    """Every object key anywhere in a JSON document."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value)) if value else set()
    return set()


def test_start_list_read_and_change_a_group():
    zoe = make_user()
    api = client_for(zoe)
    response = api.post("/api/v1/groups/", {"name": "Movie night", "member_name": "Zoe"}, format="json")
    assert response.status_code == 201
    group = response.json()
    assert group["strategy"] == "average_without_misery" and group["floor"] == 2.5
    assert group["members"] == [{"id": group["members"][0]["id"], "name": "Zoe", "is_guest": False, "is_owner": True,
                                 "is_you": True}]
    assert [g["name"] for g in api.get("/api/v1/groups/").json()] == ["Movie night"]

    changed = api.patch(f"/api/v1/groups/{group['id']}/", {"strategy": "least_misery", "floor": 3.5}, format="json")
    assert changed.status_code == 200 and (changed.json()["strategy"], changed.json()["floor"]) == ("least_misery", 3.5)
    assert api.get(f"/api/v1/groups/{group['id']}/").json()["strategy"] == "least_misery"


def test_the_groups_list_has_everyones_predictions_and_nobodys_ratings(world):
    response = client_for(world.ben).get(f"/api/v1/groups/{world.group.pk}/recommendations/", {"n": 15})
    assert response.status_code == 200
    body = response.json()
    assert body["notice"] == "" and len(body["results"]) == 15
    members = [(m.pk, m.name) for m in world.group.members.all()]
    assert [name for _, name in members] == ["Ana", "Ben", "Cleo"]
    for item in body["results"]:
        assert [(p["member"], p["name"]) for p in item["predictions"]] == members
        assert all(set(p) == {"member", "name", "predicted_stars"} for p in item["predictions"])
        assert item["reasons"] and item["movie"]["my_rating"] is None
    shown = {item["movie"]["id"] for item in body["results"]}
    assert not shown & (world.rated["Ana"] | world.rated["Cleo"] | world.rated["Ben"])
    text = json.dumps(body)
    assert "example.com" not in text
    assert not keys_of(body) & {"score", "scores", "ratings", "rating", "email"}


def test_filters_are_checked_and_applied(world):
    api = client_for(world.ana)
    url = f"/api/v1/groups/{world.group.pk}/recommendations/"
    sixties = api.get(url, {"decade": 1960}).json()["results"]
    assert sixties and all(1960 <= item["movie"]["year"] < 1970 for item in sixties)
    assert [i["movie"]["id"] for i in api.get(url, {"max_runtime": 165}).json()["results"]] == [world.leone[2].pk]
    error = api.get(url, {"decade": 1965}).json()["error"]
    assert error["code"] == "invalid" and "decade" in error["fields"]
    assert api.get(url, {"genre": "no-such-genre"}).status_code == 400


def test_invitations_join_and_revoke(world):
    owner, newcomer = client_for(world.ana), make_user("dan@example.com")
    created = owner.post(f"/api/v1/groups/{world.group.pk}/invitations/", {"days": 1}, format="json")
    assert created.status_code == 201
    invitation = created.json()
    assert invitation["url"].endswith(f"/groups/join/{invitation['token']}/") and invitation["created_by_you"]
    assert [i["id"] for i in owner.get(f"/api/v1/groups/{world.group.pk}/invitations/").json()] == [
        invitation["id"], *[i.pk for i in world.group.invitations.exclude(pk=invitation["id"])]]

    joined = client_for(newcomer).post("/api/v1/groups/join/", {"token": invitation["token"], "member_name": "Dan"},
                                       format="json")
    assert joined.status_code == 200
    assert [m["name"] for m in joined.json()["members"]] == ["Ana", "Ben", "Cleo", "Dan"]

    assert owner.delete(f"/api/v1/groups/{world.group.pk}/invitations/{invitation['id']}/").status_code == 204
    late = client_for(make_user()).post("/api/v1/groups/join/", {"token": invitation["token"], "member_name": "Eve"},
                                        format="json")
    assert late.status_code == 400 and "revoked" in late.json()["error"]["message"]


def test_a_guest_is_uploaded_used_and_removed(world):
    data, guest_rated = horror_guest_file()
    api = client_for(world.cleo)
    response = api.post(f"/api/v1/groups/{world.group.pk}/guests/",
                        {"name": "Gus", "file": SimpleUploadedFile("ratings.csv", data)}, format="multipart")
    assert response.status_code == 201
    added = response.json()
    assert added["member"]["name"] == "Gus" and added["member"]["is_guest"] and added["ratings"] == 5
    results = api.get(f"/api/v1/groups/{world.group.pk}/recommendations/").json()["results"]
    assert all(item["predictions"][-1]["name"] == "Gus" for item in results)
    assert not {item["movie"]["id"] for item in results} & guest_rated

    bad = api.post(f"/api/v1/groups/{world.group.pk}/guests/",
                   {"name": "Gil", "file": SimpleUploadedFile("notes.txt", b"hello")}, format="multipart")
    assert bad.status_code == 400 and "file" in bad.json()["error"]["fields"]

    assert api.delete(f"/api/v1/groups/{world.group.pk}/members/{added['member']['id']}/").status_code == 204
    assert not WatchGroupGuestFilm.objects.exists()


def test_errors_have_the_apis_shape_and_strangers_get_404(world):
    stranger = client_for(make_user())
    for method, path in [("get", ""), ("get", "recommendations/"), ("patch", ""), ("delete", ""),
                         ("post", "invitations/")]:
        response = getattr(stranger, method)(f"/api/v1/groups/{world.group.pk}/{path}", {}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", (method, path)

    ben = client_for(world.ben)
    refused = ben.delete(f"/api/v1/groups/{world.group.pk}/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    cleo = world.group.members.get(name="Cleo")
    assert ben.delete(f"/api/v1/groups/{world.group.pk}/members/{cleo.pk}/").status_code == 403

    bad = ben.patch(f"/api/v1/groups/{world.group.pk}/", {"strategy": "dictator", "floor": 4.2}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) >= {"strategy"}
    taken = client_for(make_user()).post("/api/v1/groups/join/", {"token": world.group.invitations.first().token,
                                                                   "member_name": "ben"}, format="json")
    assert taken.status_code == 400 and "member_name" in taken.json()["error"]["fields"]
    assert APIClient().get("/api/v1/groups/").status_code in (401, 403)

    assert client_for(world.ana).delete(f"/api/v1/groups/{world.group.pk}/").status_code == 204
    assert not WatchGroup.objects.exists() and not WatchGroupMember.objects.exists()
