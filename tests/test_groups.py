"""Watch together: the group's list, its strategies and reasons, invitations, guests, leaving —
through the services, selectors and pages."""
import re
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from catalog.models import Genre, Movie, Rating
from recommendations import group_ranking
from recommendations.group_selectors import GroupFilters, group_recommendations
from recommendations.group_services import (
    MAX_MEMBERS,
    add_guest,
    create_group,
    create_invitation,
    delete_group,
    join_group,
    leave_group,
    remove_member,
    revoke_invitation,
    update_group,
)
from recommendations.models import WatchGroup, WatchGroupGuestFilm, WatchGroupInvitation, WatchGroupMember
from tests.factories import make_user
from tests.groups_data import (
    horror_guest_file,
    letterboxd_ratings,
    letterboxd_zip,
    make_world,
    put_on_watchlist,
    western_watchlist_film,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return make_world()


def shown_ids(group_list):
    return [item.movie.pk for item in group_list.items]


# ----------------------------------------------------------------------------- strategies (pure)

# Three members (rows) x four films (columns) of predicted stars; served scores equal, so only
# the stars decide.
STARS = np.array([
    [4.9, 3.6, 4.6, 2.2],
    [4.8, 3.7, 4.4, 5.0],
    [2.6, 3.8, 3.9, 5.0],
])
NEUTRAL = np.zeros_like(STARS)


def test_average_without_misery_ranks_by_average_but_puts_films_someone_would_dislike_last():
    # Averages 4.1, 3.7, 4.3, 4.07; film 0 has Cleo at 2.6 and film 3 Ana at 2.2: both below 3.
    assert group_ranking.order(STARS, NEUTRAL, "average_without_misery", floor=3.0).tolist() == [2, 1, 0, 3]
    # With a floor of 2.5 only film 3 is vetoed.
    assert group_ranking.order(STARS, NEUTRAL, "average_without_misery", floor=2.5).tolist() == [2, 0, 1, 3]


def test_least_misery_lets_the_least_happy_member_decide_and_most_pleasure_the_happiest():
    assert group_ranking.order(STARS, NEUTRAL, "least_misery").tolist() == [2, 1, 0, 3]
    assert group_ranking.order(STARS, NEUTRAL, "most_pleasure").tolist() == [3, 0, 2, 1]


def test_a_film_that_stands_out_in_members_own_rankings_counts_half_a_star_per_standard_deviation():
    stars = np.array([[4.0, 3.8], [4.0, 3.8]])
    served = np.array([[0.5, 1.5], [0.5, 1.5]])  # film 1: 0.2 stars less, one deviation more
    for strategy in group_ranking.STRATEGIES:
        assert group_ranking.order(stars, served, strategy).tolist() == [1, 0]
        assert group_ranking.order(stars, served / 4, strategy).tolist() == [0, 1]


def test_reasons_name_a_director_a_member_loves_and_how_the_group_stands():
    model = SimpleNamespace(item_people=[["director:David Fincher"], []])
    members = [SimpleNamespace(favourite_directors={"director:David Fincher"}), SimpleNamespace(favourite_directors=set())]
    names = ["Ana", "Ben"]

    assert group_ranking.reasons(model, 0, np.array([4.6, 3.7]), members, names, "least_misery", 3.0) == [
        "Ana loves David Fincher", "Everyone's above 3.5"]
    assert group_ranking.reasons(model, 1, np.array([4.6, 2.7]), members, names, "average_without_misery", 3.0) == [
        "Ana's pick (4.6 ★)"]
    assert group_ranking.reasons(model, 1, np.array([2.9, 4.1]), members, names, "most_pleasure", 2.5) == [
        "Ben's pick (4.1 ★)"]
    assert group_ranking.reasons(model, 1, np.array([3.0, 3.4]), members, names, "average_without_misery", 3.0) == [
        "Nobody below 2.5"]


# ----------------------------------------------------------------------------- the list


def test_the_list_leaves_out_what_any_member_rated_or_hid_and_shows_everyones_predicted_stars(world):
    group_list = group_recommendations(world.group, n=30)
    ids = shown_ids(group_list)
    assert len(ids) == 30
    everything_rated = set().union(*world.rated.values())
    assert not set(ids) & everything_rated
    assert not set(ids) & world.hidden
    assert [m.name for m in group_list.members] == ["Ana", "Ben", "Cleo"]
    for item in group_list.items:
        assert [p.member.name for p in item.predictions] == ["Ana", "Ben", "Cleo"]
        assert all(0.5 <= p.stars <= 5 for p in item.predictions)
        assert item.reasons


def test_two_western_fans_get_westerns_and_hear_which_director_ana_loves(world):
    remove_member(world.group.members.get(user=world.cleo), by=world.ana)
    items = group_recommendations(world.group, n=5).items
    assert all(item.movie.genres.get().name == "Western" for item in items)
    leone = [item for item in items if item.movie.pk in {m.pk for m in world.leone[2:]}]
    assert leone, "the unseen Leone films suit two western fans"
    assert all("Ana loves Sergio Leone" in item.reasons for item in leone)


def test_the_group_chooses_its_strategy_and_the_list_follows_it(client, world):
    client.force_login(world.ben)
    url = reverse("groups:detail", args=[world.group.pk])
    response = client.post(reverse("groups:settings", args=[world.group.pk]), {"strategy": "most_pleasure", "floor": "3.5"})
    assert response.status_code == 302
    world.group.refresh_from_db()
    assert (world.group.strategy, world.group.floor) == ("most_pleasure", 3.5)
    page = client.get(url).content.decode()
    assert "most pleasure" in page.lower()
    assert client.post(reverse("groups:settings", args=[world.group.pk]), {"strategy": "dictator", "floor": "3"}).status_code == 302
    world.group.refresh_from_db()
    assert world.group.strategy == "most_pleasure"
    with pytest.raises(ValidationError):
        update_group(world.group, by=world.ben, floor=4.2)


def test_filters_by_genre_decade_runtime_and_anyones_watchlist(world):
    western = Genre.objects.get(name="Western")
    items = group_recommendations(world.group, filters=GroupFilters(genre=western), n=50).items
    assert items and all(item.movie.genres.filter(pk=western.pk).exists() for item in items)

    sixties = shown_ids(group_recommendations(world.group, filters=GroupFilters(decade=1960)))
    assert sixties and set(sixties) <= {m.pk for m in world.leone[2:]}

    short = shown_ids(group_recommendations(world.group, filters=GroupFilters(max_runtime=165)))
    assert short == [world.leone[2].pk]  # 160 minutes; the 175-minute one and films of unknown length are out

    film = western_watchlist_film()
    put_on_watchlist(world.ben, film)
    assert shown_ids(group_recommendations(world.group, filters=GroupFilters(on_watchlist=True))) == [film.pk]


def test_without_a_model_the_group_gets_popular_films_none_of_them_rated_and_is_told_why(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    world = make_world(fit=False)
    group_list = group_recommendations(world.group, n=10)
    assert "model" in group_list.notice
    counts = [item.movie.rating_count for item in group_list.items]
    assert len(counts) == 10 and counts == sorted(counts, reverse=True)
    assert not set(shown_ids(group_list)) & (set().union(*world.rated.values()) | world.hidden)
    assert all(p.stars is None for item in group_list.items for p in item.predictions)


def test_a_group_of_one_is_asked_to_invite_someone(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    owner = make_user()
    group = create_group(owner=owner, name="Just me", member_name="Me")
    assert group_recommendations(group).items == []
    client.force_login(owner)
    page = client.get(reverse("groups:detail", args=[group.pk])).content.decode()
    assert "needs at least two members" in page


# ----------------------------------------------------------------------------- privacy


def test_members_see_names_and_predictions_never_each_others_ratings(client, world):
    client.force_login(world.ben)
    response = client.get(reverse("groups:detail", args=[world.group.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ana" in page and "Cleo" in page
    assert "ana@example.com" not in page and "cleo@example.com" not in page
    others_rated = Movie.objects.filter(pk__in=world.rated["Ana"] | world.rated["Cleo"])
    for movie in others_rated:
        assert not re.search(rf">{re.escape(movie.title)}<", page), movie.title
    assert page.count("wt-stars__value") == 3 * 20  # three members' predictions for each of 20 films


def test_non_members_cannot_see_or_touch_a_group(client, world):
    stranger = make_user()
    client.force_login(stranger)
    pk = world.group.pk
    assert client.get(reverse("groups:detail", args=[pk])).status_code == 404
    for name, args in [("settings", [pk]), ("invite", [pk]), ("leave", [pk]), ("delete", [pk]), ("add_guest", [pk]),
                       ("remove_member", [pk, world.group.members.get(user=world.ben).pk])]:
        assert client.post(reverse(f"groups:{name}", args=args), {"strategy": "least_misery"}).status_code == 404, name
    assert WatchGroupMember.objects.filter(group=world.group).count() == 3
    assert world.group.name not in client.get(reverse("groups:list")).content.decode()


# ----------------------------------------------------------------------------- invitations


def test_invitation_links_are_unguessable_expire_and_can_be_revoked(client, world):
    first, second = create_invitation(world.group, by=world.ben), create_invitation(world.group, by=world.ben, days=1)
    assert first.token != second.token and len(first.token) >= 40
    newcomer = make_user("dan@example.com")
    client.force_login(newcomer)

    second.expires_at = timezone.now() - timedelta(seconds=1)
    second.save()
    response = client.get(reverse("groups:join", args=[second.token]))
    assert response.status_code == 404 and "expired" in response.content.decode()

    revoke_invitation(first, by=world.ben)
    response = client.post(reverse("groups:join", args=[first.token]), {"member_name": "Dan"})
    assert response.status_code == 404 and "revoked" in response.content.decode()
    assert client.get(reverse("groups:join", args=["x" * 43])).status_code == 404
    assert not world.group.members.filter(user=newcomer).exists()

    third = create_invitation(world.group, by=world.cleo)
    with pytest.raises(PermissionDenied):
        revoke_invitation(third, by=world.ben)  # neither its maker nor the owner
    revoke_invitation(third, by=world.ana)
    assert WatchGroupInvitation.objects.get(pk=third.pk).revoked_at is not None


def test_joining_by_link_adds_the_member_under_the_name_they_choose(client, world):
    invitation = create_invitation(world.group, by=world.cleo)
    newcomer = make_user("dan@example.com")
    url = reverse("groups:join", args=[invitation.token])
    assert client.get(url).status_code == 302  # signed out: to the login page first
    client.force_login(newcomer)
    page = client.get(url).content.decode()
    assert "Friday films" in page and "Ana" in page and "Cleo" in page

    response = client.post(url, {"member_name": "ana"})
    assert response.status_code == 400 and "already called ana" in response.content.decode()
    response = client.post(url, {"member_name": "Dan"})
    assert response.status_code == 302
    assert world.group.members.get(user=newcomer).name == "Dan"
    assert "4 members" in client.get(reverse("groups:list")).content.decode()
    assert client.get(url).status_code == 302  # already in: straight to the group


def test_a_group_holds_at_most_eight_members(world):
    invitation = create_invitation(world.group, by=world.ana)
    for i in range(MAX_MEMBERS - 3):
        join_group(token=invitation.token, user=make_user(), member_name=f"Friend {i}")
    with pytest.raises(ValidationError, match="already has 8 members"):
        join_group(token=invitation.token, user=make_user(), member_name="One too many")
    data, _ = horror_guest_file()
    with pytest.raises(ValidationError, match="already has 8 members"):
        add_guest(world.group, by=world.ana, name="Guest", filename="ratings.csv", data=data)
    assert world.group.members.count() == MAX_MEMBERS


# ----------------------------------------------------------------------------- leaving and deleting


def test_the_owner_removes_members_and_nobody_else_can(world):
    ben, cleo = (world.group.members.get(user=u) for u in (world.ben, world.cleo))
    with pytest.raises(PermissionDenied):
        remove_member(cleo, by=world.ben)
    remove_member(cleo, by=world.ana)
    assert list(world.group.members.values_list("name", flat=True)) == ["Ana", "Ben"]
    assert ben.pk in world.group.members.values_list("pk", flat=True)


def test_a_member_leaves_and_when_the_owner_leaves_the_longest_standing_member_takes_over(world):
    leave_group(world.group, user=world.cleo)
    leave_group(world.group, user=world.ana)
    world.group.refresh_from_db()
    assert world.group.owner_id == world.ben.pk
    assert list(world.group.members.values_list("name", flat=True)) == ["Ben"]
    leave_group(world.group, user=world.ben)
    assert not WatchGroup.objects.filter(pk=world.group.pk).exists()


def test_account_deletion_hands_the_group_over_and_the_last_account_takes_the_guests_along(world):
    from accounts.services import delete_account

    data, _ = horror_guest_file()
    add_guest(world.group, by=world.ana, name="Gus", filename="ratings.csv", data=data)
    delete_account(user=world.ana)
    world.group.refresh_from_db()
    assert world.group.owner_id == world.ben.pk
    assert list(world.group.members.values_list("name", flat=True)) == ["Ben", "Cleo", "Gus"]
    delete_account(user=world.cleo)
    assert WatchGroup.objects.get(pk=world.group.pk).owner_id == world.ben.pk
    delete_account(user=world.ben)
    assert not WatchGroup.objects.exists()
    assert not WatchGroupMember.objects.exists() and not WatchGroupGuestFilm.objects.exists()


def test_deleting_a_group_deletes_its_members_guests_their_films_and_invitations(client, world):
    data, _ = horror_guest_file()
    add_guest(world.group, by=world.ben, name="Gus", filename="ratings.csv", data=data)
    create_invitation(world.group, by=world.ben)
    with pytest.raises(PermissionDenied):
        delete_group(world.group, by=world.ben)
    client.force_login(world.ana)
    assert client.post(reverse("groups:delete", args=[world.group.pk])).status_code == 302
    assert not WatchGroup.objects.exists()
    assert not WatchGroupMember.objects.exists()
    assert not WatchGroupGuestFilm.objects.exists()
    assert not WatchGroupInvitation.objects.exists()


# ----------------------------------------------------------------------------- guests


def test_a_guests_letterboxd_ratings_shape_the_list_for_this_group_only(client, world):
    ratings_before = Rating.objects.count()
    data, guest_rated = horror_guest_file()
    client.force_login(world.ben)
    response = client.post(reverse("groups:add_guest", args=[world.group.pk]),
                           {"name": "Gus", "file": _upload("ratings.csv", data)}, follow=True)
    assert "Gus joined as a guest: 5 ratings matched the catalogue." in response.content.decode()
    guest = world.group.members.get(name="Gus")
    assert guest.is_guest and guest.added_by == world.ben
    assert dict(guest.guest_films.values_list("movie_id", "score")) == {pk: 5.0 for pk in guest_rated}
    assert Rating.objects.count() == ratings_before  # nobody's ratings, no account

    group_list = group_recommendations(world.group, n=30)
    assert not set(shown_ids(group_list)) & guest_rated
    assert all(item.predictions[-1].member.name == "Gus" and 0.5 <= item.predictions[-1].stars <= 5
               for item in group_list.items)
    other = create_group(owner=world.ben, name="Other", member_name="Ben")
    assert not WatchGroupGuestFilm.objects.filter(member__group=other).exists()

    remove_member(guest, by=world.ben)  # whoever added a guest may remove them
    assert not WatchGroupGuestFilm.objects.exists()


def test_a_guests_export_zip_brings_their_watchlist_to_the_watchlist_filter(world):
    film = western_watchlist_film()
    ratings, _ = horror_guest_file()
    added = add_guest(world.group, by=world.cleo, name="Gus", filename="letterboxd.zip",
                      data=letterboxd_zip(ratings, watchlist_rows=[(film.title, film.year), ("Unknown Film", 1990)]))
    assert (added.ratings, added.watchlist, added.unmatched) == (5, 1, 1)
    assert shown_ids(group_recommendations(world.group, filters=GroupFilters(on_watchlist=True))) == [film.pk]


@pytest.mark.parametrize("filename, data, message", [
    ("notes.txt", b"hello", "not a Letterboxd or IMDb export"),
    ("ratings.csv", b"Date,Name,Year,Letterboxd URI,Rating\n2024-01-01,Heat,1995,x,7\n", "line 2"),
    ("ratings.csv", letterboxd_ratings([("A Film Nobody Has", 1987, 4.0)]), "None of the ratings"),
])
def test_a_bad_guest_file_says_what_is_wrong_and_adds_nobody(client, world, filename, data, message):
    client.force_login(world.ana)
    response = client.post(reverse("groups:add_guest", args=[world.group.pk]),
                           {"name": "Gus", "file": _upload(filename, data)})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not world.group.members.filter(name="Gus").exists()
    assert not WatchGroupGuestFilm.objects.exists()


def _upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/csv")


# ----------------------------------------------------------------------------- pages


def test_starting_a_group_from_the_page(client, settings, tmp_path):
    user = make_user()
    client.force_login(user)
    assert "Watch together" in client.get("/").content.decode()  # the nav link
    response = client.post(reverse("groups:list"), {"name": "  ", "member_name": "Zoe"})
    assert response.status_code == 400
    response = client.post(reverse("groups:list"), {"name": "Movie night", "member_name": "Zoe"})
    group = WatchGroup.objects.get(name="Movie night")
    assert response.url == reverse("groups:detail", args=[group.pk])
    assert group.owner == user and group.members.get().name == "Zoe"
    assert "Movie night" in client.get(reverse("groups:list")).content.decode()
