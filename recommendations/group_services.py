"""Watch together, the writes: groups, invitations, members and guests.

Who may do what: any member changes the group's name and strategy, invites, and adds guests;
a member leaves; the owner removes members and deletes the group; whoever added a guest may
remove that guest too. Refusals raise PermissionDenied; bad input raises ValidationError with a
sentence saying what is wrong (both become the API's error body and a message on the pages).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from catalog import history_import
from recommendations import group_ranking
from recommendations.models import WatchGroup, WatchGroupGuestFilm, WatchGroupInvitation, WatchGroupMember

MAX_MEMBERS = 8
MIN_MEMBERS = 2
INVITATION_DAYS = (1, 7, 30)
DEFAULT_INVITATION_DAYS = 7
TOKEN_BYTES = 32  # 256 random bits: unguessable


def _clean_name(name: str, field: str, what: str, max_length: int) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({field: [f"Give {what}."]})
    if len(name) > max_length:
        raise ValidationError({field: [f"At most {max_length} characters."]})
    return name


def _group_name(name: str) -> str:
    return _clean_name(name, "name", "the group a name", WatchGroup._meta.get_field("name").max_length)


def _check_member_name(group: WatchGroup, name: str, field: str = "member_name") -> str:
    name = _clean_name(name, field, "the name the group will see", WatchGroupMember._meta.get_field("name").max_length)
    if group.members.filter(name__iexact=name).exists():
        raise ValidationError({field: [f"Someone in {group.name} is already called {name}: pick another name."]})
    return name


def _lock(group: WatchGroup) -> WatchGroup:
    """The group row locked until the end of the transaction (member counts cannot race)."""
    return WatchGroup.objects.select_for_update().get(pk=group.pk)


def _check_room(group: WatchGroup) -> None:
    if group.members.count() >= MAX_MEMBERS:
        raise ValidationError(f"{group.name} already has {MAX_MEMBERS} members, the most a group can have.")


def member_of(group: WatchGroup, user) -> WatchGroupMember:
    """The user's membership of the group; PermissionDenied when they are not a member."""
    member = group.members.filter(user_id=user.pk).first() if user.is_authenticated else None
    if member is None:
        raise PermissionDenied("You are not a member of this group.")
    return member


def _require_owner(group: WatchGroup, user, action: str) -> None:
    if group.owner_id != user.pk:
        raise PermissionDenied(f"Only the group's owner can {action}.")


# ----------------------------------------------------------------------------- groups


@transaction.atomic
def create_group(*, owner, name: str, member_name: str) -> WatchGroup:
    """A new group with its owner as first member, shown to the others as ``member_name``."""
    name = _group_name(name)
    group = WatchGroup.objects.create(name=name, owner=owner)
    WatchGroupMember.objects.create(group=group, user=owner, name=_check_member_name(group, member_name))
    return group


def update_group(group: WatchGroup, *, by, name: str | None = None, strategy: str | None = None,
                 floor: float | None = None) -> WatchGroup:
    """Rename the group or change how it ranks (any member)."""
    member_of(group, by)
    if name is not None:
        group.name = _group_name(name)
    if strategy is not None:
        if strategy not in group_ranking.STRATEGIES:
            raise ValidationError({"strategy": [f"Choose one of {', '.join(group_ranking.STRATEGIES)}."]})
        group.strategy = strategy
    if floor is not None:
        floors = [value for value, _ in WatchGroup.FLOORS]
        if floor not in floors:
            raise ValidationError({"floor": [f"Choose one of {', '.join(f'{f:g}' for f in floors)} stars."]})
        group.floor = floor
    group.save()
    return group


def delete_group(group: WatchGroup, *, by) -> None:
    """Delete the group with its members, guests (and their films) and invitations (owner only)."""
    _require_owner(group, by, "delete it")
    group.delete()


# ----------------------------------------------------------------------------- invitations


def create_invitation(group: WatchGroup, *, by, days: int = DEFAULT_INVITATION_DAYS) -> WatchGroupInvitation:
    """A new unguessable link to join the group, valid for ``days`` days (any member)."""
    member_of(group, by)
    if days not in INVITATION_DAYS:
        raise ValidationError({"days": [f"Choose one of {', '.join(map(str, INVITATION_DAYS))} days."]})
    return WatchGroupInvitation.objects.create(group=group, token=secrets.token_urlsafe(TOKEN_BYTES), created_by=by,
                                               expires_at=timezone.now() + timedelta(days=days))


def revoke_invitation(invitation: WatchGroupInvitation, *, by) -> None:
    """The link stops working at once (its creator or the owner)."""
    member_of(invitation.group, by)
    if by.pk not in (invitation.created_by_id, invitation.group.owner_id):
        raise PermissionDenied("Only whoever made this link or the group's owner can revoke it.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


def usable_invitation(token: str) -> WatchGroupInvitation:
    """The invitation behind a link; ValidationError saying why when it cannot be used."""
    invitation = WatchGroupInvitation.objects.select_related("group").filter(token=token or "").first()
    if invitation is None:
        raise ValidationError("This invitation link is not valid: check that it was copied whole.")
    if invitation.revoked_at is not None:
        raise ValidationError("This invitation link was revoked: ask the group for a new one.")
    if invitation.expires_at <= timezone.now():
        raise ValidationError("This invitation link has expired: ask the group for a new one.")
    return invitation


@transaction.atomic
def join_group(*, token: str, user, member_name: str) -> WatchGroupMember:
    """Accept an invitation: the user joins its group as ``member_name`` (already a member: as is)."""
    invitation = usable_invitation(token)
    group = _lock(invitation.group)
    existing = group.members.filter(user_id=user.pk).first()
    if existing is not None:
        return existing
    _check_room(group)
    return WatchGroupMember.objects.create(group=group, user=user, name=_check_member_name(group, member_name))


# ----------------------------------------------------------------------------- members


@transaction.atomic
def remove_member(member: WatchGroupMember, *, by) -> None:
    """Remove a member: yourself (leaving), anyone (the owner), a guest you added.

    Then, as after an account deletion (see _after_member_left): if the owner went, the
    longest-standing other account member becomes the owner; a group left without account
    members is deleted with its guests and their films.
    """
    group = _lock(member.group)
    member_of(group, by)
    if not (member.user_id == by.pk or group.owner_id == by.pk or (member.is_guest and member.added_by_id == by.pk)):
        raise PermissionDenied("Only the group's owner can remove other members.")
    member.delete()


@receiver(post_delete, sender=WatchGroupMember, dispatch_uid="watch_group_member_left")
def _after_member_left(sender, instance, origin=None, **kwargs):
    """Keep every group with an owner and delete groups nobody with an account is left in.

    Runs whoever deletes the membership: leaving, removal, or the member's account deletion
    (then the owner field has already been emptied). Not while the group itself is deleted.
    """
    if instance.is_guest or _is_group_deletion(origin):
        return
    group = WatchGroup.objects.filter(pk=instance.group_id).first()
    if group is None or group.owner_id not in (None, instance.user_id):
        return
    heir = group.members.filter(user__isnull=False).order_by("joined_at", "id").first()
    if heir is None:
        group.delete()
    else:
        WatchGroup.objects.filter(pk=group.pk).update(owner_id=heir.user_id)


def _is_group_deletion(origin) -> bool:
    model = origin.model if isinstance(origin, QuerySet) else type(origin)
    return model is WatchGroup


def leave_group(group: WatchGroup, *, user) -> None:
    remove_member(member_of(group, user), by=user)


@dataclass
class GuestImport:
    member: WatchGroupMember
    ratings: int
    watchlist: int
    ambiguous: int
    unmatched: int
    skipped: int


@transaction.atomic
def add_guest(group: WatchGroup, *, by, name: str, filename: str, data: bytes) -> GuestImport:
    """Add a guest (no account) from their Letterboxd export (the zip, ratings.csv or
    watchlist.csv; an IMDb ratings.csv works too, 1–10 halved). Their films are kept for this
    group only, used like a member's ratings, never shown, and deleted with the guest.

    Titles that match several films are left out (a guest cannot be asked which one they meant).
    Raises ValidationError on a file that cannot be read or matches no film; nothing is kept then.
    """
    group = _lock(group)
    member_of(group, by)
    _check_room(group)
    name = _check_member_name(group, name, field="name")
    try:
        parsed = history_import.parse_history_file(filename, data)
    except history_import.HistoryFileError as error:
        raise ValidationError({"file": [str(error)]}) from error
    films: dict[int, float | None] = {}
    counts = {"ambiguous": 0, "unmatched": 0}
    for row in history_import.match_rows(parsed.rows):
        if row["status"] != "matched":
            counts[row["status"]] += 1
            continue
        movie_id = row["movie_id"]
        if row["kind"] == "rating":
            score = row["raw_score"]
            films[movie_id] = history_import.imdb_to_stars(int(score)) if parsed.source == "imdb" else float(score)
        else:
            films.setdefault(movie_id, None)  # a rating of the same film wins over a watchlist entry
    if not any(score is not None for score in films.values()):
        raise ValidationError({"file": [f"None of the ratings in {filename} matched a film in the catalogue, so "
                                        "the group cannot learn this guest's taste."]})
    member = WatchGroupMember.objects.create(group=group, name=name, added_by=by)
    WatchGroupGuestFilm.objects.bulk_create(
        [WatchGroupGuestFilm(member=member, movie_id=movie_id, score=score) for movie_id, score in films.items()])
    ratings = sum(score is not None for score in films.values())
    return GuestImport(member, ratings, len(films) - ratings, counts["ambiguous"], counts["unmatched"],
                       len(parsed.skipped))
