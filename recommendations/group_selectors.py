"""Watch together, the reads: a user's groups, a group's members and invitations, its list.

The list is ranked by recommendations.group_ranking over the current model. Members are read
through recommendations.selectors (load_user_state: current ratings, hidden films, vector);
a guest's films from the group's own table, folded into the model like a new user's.
What leaves this module about a member is their name and predictions, never their ratings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from django.db.models import Count, prefetch_related_objects
from django.utils import timezone

from catalog.models import Genre, Movie, NotInterested, Rating, WatchlistEntry
from recommendations import group_ranking, selectors
from recommendations.group_services import MIN_MEMBERS
from recommendations.models import WatchGroup, WatchGroupGuestFilm, WatchGroupInvitation, WatchGroupMember

LIST_SIZE = 20
MAX_LIST_SIZE = 60
POPULAR_REASON = "Popular on movierec"
# A guest has no account: no demographics, no genre picks, nothing stored under an id.
_GUEST = SimpleNamespace(pk=None)


@dataclass
class GroupFilters:
    genre: Genre | None = None
    decade: int | None = None  # 1990 = 1990–1999
    max_runtime: int | None = None  # minutes; films without a known runtime are left out
    on_watchlist: bool = False  # on some member's watchlist (a guest's export included)

    @property
    def active(self) -> bool:
        return bool(self.genre or self.decade or self.max_runtime or self.on_watchlist)


@dataclass
class MemberPrediction:
    member: WatchGroupMember
    stars: float | None


@dataclass
class GroupRecommendation:
    movie: Movie
    predictions: list[MemberPrediction]  # one per member, in member order
    mean_stars: float | None
    reasons: list[str]


@dataclass
class GroupList:
    members: list[WatchGroupMember]
    items: list[GroupRecommendation] = field(default_factory=list)
    notice: str = ""  # why the list is empty or not personal


def groups_for_user(user):
    """The groups the user is a member of, newest first, with ``member_count``."""
    # A subquery, not a join on members: the join would leave only the user's row to count.
    mine = WatchGroupMember.objects.filter(user_id=user.pk).values("group_id")
    return WatchGroup.objects.filter(pk__in=mine).annotate(member_count=Count("members")).order_by("-created_at", "-id")


def group_members(group: WatchGroup) -> list[WatchGroupMember]:
    return list(group.members.select_related("user"))


def active_invitations(group: WatchGroup) -> list[WatchGroupInvitation]:
    """Links that still work, newest first."""
    return list(group.invitations.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()))


def catalogue_has_runtimes() -> bool:
    """Whether the runtime filter means anything (runtimes come with TMDB metadata)."""
    return Movie.objects.filter(runtime__isnull=False).exists()


# ----------------------------------------------------------------------------- the list


def group_recommendations(group: WatchGroup, *, filters: GroupFilters | None = None, n: int = LIST_SIZE) -> GroupList:
    """The group's list: films nobody in it rated, hid (or, for a guest, had in their export as
    rated), ranked under the group's strategy, each with every member's predicted stars and the
    reasons. Popular films without predictions when no model is published yet."""
    filters = filters or GroupFilters()
    members = group_members(group)
    if len(members) < MIN_MEMBERS:
        return GroupList(members, notice="Invite someone or add a guest: a group list needs at least two members.")
    model = selectors.current_model()
    if model is None:
        return GroupList(members, _popular(members, filters, n),
                         notice="Predictions appear once the recommendation model has been trained: "
                                "until then, these are popular films none of you has rated.")
    tastes = [_member_taste(member, model) for member in members]
    picks = group_ranking.rank_for_group(model, tastes, strategy=group.strategy, floor=group.floor, n=n,
                                         allowed=_filter_mask(model, members, filters))
    movies = Movie.objects.in_bulk([int(model.item_keys[pick.item]) for pick in picks])
    items = []
    for pick in picks:
        movie = movies.get(int(model.item_keys[pick.item]))
        if movie is None:  # deleted from the catalogue since the fit
            continue
        predictions = [MemberPrediction(member, stars) for member, stars in zip(members, pick.stars)]
        items.append(GroupRecommendation(movie, predictions, round(pick.mean, 1), pick.reasons))
    prefetch_related_objects([item.movie for item in items], "genres")
    notice = "" if items else "No film fits these filters and nobody's ratings: loosen a filter."
    return GroupList(members, items, notice)


def _member_taste(member: WatchGroupMember, model) -> group_ranking.MemberTaste:
    if member.is_guest:
        films = WatchGroupGuestFilm.objects.filter(member=member, score__isnull=False).values_list("movie_id", "score")
        pairs = [(model.item_index[m], s) for m, s in films if m in model.item_index]
        items = np.array([p[0] for p in pairs], dtype=np.int64)
        scores = np.array([p[1] for p in pairs], dtype=np.float32)
        hidden = np.empty(0, np.int64)
        vector = selectors.fold_in_user(_GUEST, model, items, scores, hidden)
        state = selectors.UserState({}, set(), items, scores, hidden, vector)
        key = None
    else:
        state = selectors.load_user_state(member.user, model)
        key = member.user_id
    # "Ana loves X": a director whose films (two or more) Ana rates highly, as the Explainer says.
    loved = selectors.Explainer(model, state).directors
    return group_ranking.MemberTaste(name=member.name, key=key, vector=state.vector, items=state.items,
                                     scores=state.scores, hidden=state.hidden_items, favourite_directors=loved)


def _watchlist_ids(members: list[WatchGroupMember]) -> set[int]:
    users = [m.user_id for m in members if not m.is_guest]
    guests = [m.pk for m in members if m.is_guest]
    ids = set(WatchlistEntry.objects.filter(user_id__in=users).values_list("movie_id", flat=True))
    ids |= set(WatchGroupGuestFilm.objects.filter(member_id__in=guests, score__isnull=True)
               .values_list("movie_id", flat=True))
    return ids


def _mask_of(model, movie_ids) -> np.ndarray:
    mask = np.zeros(model.n_items, bool)
    mask[[model.item_index[m] for m in movie_ids if m in model.item_index]] = True
    return mask


def _filter_mask(model, members: list[WatchGroupMember], filters: GroupFilters) -> np.ndarray | None:
    if not filters.active:
        return None
    allowed = np.ones(model.n_items, bool)
    if filters.genre is not None:
        allowed &= model.genre_masks.get(filters.genre.name, np.zeros(model.n_items, bool))
    if filters.decade is not None:
        allowed &= (model.item_years >= filters.decade) & (model.item_years < filters.decade + 10)
    if filters.max_runtime is not None:
        allowed &= _mask_of(model, Movie.objects.filter(runtime__lte=filters.max_runtime).values_list("pk", flat=True))
    if filters.on_watchlist:
        allowed &= _mask_of(model, _watchlist_ids(members))
    return allowed


def _popular(members: list[WatchGroupMember], filters: GroupFilters, n: int) -> list[GroupRecommendation]:
    users = [m.user_id for m in members if not m.is_guest]
    guests = [m.pk for m in members if m.is_guest]
    movies = (Movie.objects
              .exclude(pk__in=Rating.objects.filter(user_id__in=users).values("movie_id"))
              .exclude(pk__in=NotInterested.objects.filter(user_id__in=users).values("movie_id"))
              .exclude(pk__in=WatchGroupGuestFilm.objects.filter(member_id__in=guests, score__isnull=False)
                       .values("movie_id")))
    if filters.genre is not None:
        movies = movies.filter(genres=filters.genre)
    if filters.decade is not None:
        movies = movies.filter(year__gte=filters.decade, year__lt=filters.decade + 10)
    if filters.max_runtime is not None:
        movies = movies.filter(runtime__lte=filters.max_runtime)
    if filters.on_watchlist:
        movies = movies.filter(pk__in=_watchlist_ids(members))
    movies = list(movies.order_by("-rating_count", "-rating_mean", "pk")[:n])
    prefetch_related_objects(movies, "genres")
    return [GroupRecommendation(movie, [MemberPrediction(m, None) for m in members], None, [POPULAR_REASON])
            for movie in movies]
