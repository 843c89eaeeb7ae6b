"""Ranking for a "watch together" group: pure numpy over a fitted Recommender, no Django.

The site (recommendations.group_selectors) and the leave-one-out bench (bench/bench_groups.py)
both call these functions, so the bench measures the code that serves.

1. Candidates: each member's own served ranking (Recommender.blended_scores) over the films
   nobody in the group rated or hid and that pass the filters; the best CANDIDATES_PER_MEMBER of
   each member, united.
2. Every member's predicted stars (Recommender.predicted_stars) for every candidate, and each
   member's *utility*: predicted stars plus SERVED_WEIGHT (half a star) per standard deviation
   the film stands out by in the member's own served ranking.
   Predicted stars alone say how much someone would like a film once watched, not whether it is
   their kind of film at all: on ml-latest-small, ordering by stars alone put a film every
   member loved in the group's top 10 less often than popularity did (bench/bench_groups.py
   prints that reference row); with the served score in the utility every strategy beats it.
3. The group's strategy folds the members' utilities into one order:
   - ``average_without_misery`` (default): highest average utility among the films nobody is
     predicted to rate below the group's floor (in stars); the others only after them;
   - ``least_misery``: the least happy member decides (ties: higher average);
   - ``most_pleasure``: the happiest member decides (ties: higher average).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from recommendations import engine

CANDIDATES_PER_MEMBER = 300
# Half a star per standard deviation of a member's served score. Chosen on draws other than the
# bench's (0.25 to 4 gave hit rates within each other's noise) and on how lists of real users read:
# at 1 the served score overrode the stars, so a film averaging 3.5 led one averaging 4.1.
SERVED_WEIGHT = 0.5
DEFAULT_FLOOR = 2.5  # a floor of 3 cost 4.5 points of leave-one-out hit rate (bench/bench_groups.py)
HAPPY_MIN = 3.0  # below this, "everyone's above" is no praise

STRATEGIES = {
    "average_without_misery": "Average, nobody below the floor",
    "least_misery": "Least misery: the least happy member decides",
    "most_pleasure": "Most pleasure: the happiest member decides",
}
DEFAULT_STRATEGY = "average_without_misery"


@dataclass
class MemberTaste:
    """What the model needs of one member (account or guest), in model indices."""

    name: str
    key: object  # the model's user key (a user id), None for a guest
    vector: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    hidden: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    favourite_directors: set = field(default_factory=set)  # "director:Name" entries of model.item_people


@dataclass
class GroupPick:
    item: int  # model index
    stars: list[float]  # predicted stars of each member, in member order
    mean: float
    reasons: list[str]


def excluded_items(model, members: list[MemberTaste]) -> np.ndarray:
    """Boolean mask over the catalogue: True for films some member rated or hid."""
    mask = np.zeros(model.n_items, bool)
    for member in members:
        mask[member.items] = True
        mask[member.hidden] = True
    return mask


def served_scores(model, members: list[MemberTaste]) -> np.ndarray:
    """members x catalogue: each member's served score in standard deviations over the catalogue."""
    return np.vstack([engine.standardise(model.blended_scores(m.vector, m.items, m.scores)) for m in members])


def candidates(served: np.ndarray, allowed: np.ndarray, per_member: int = CANDIDATES_PER_MEMBER) -> np.ndarray:
    """Union of each member's best ``per_member`` allowed films by their served score."""
    chosen = [np.empty(0, np.int64)]
    for row in served:
        scores = np.where(allowed, row, -np.inf)
        best = engine.top_k(scores, per_member)
        chosen.append(best[np.isfinite(scores[best])])
    return np.unique(np.concatenate(chosen))


def member_stars(model, members: list[MemberTaste], items: np.ndarray) -> np.ndarray:
    """members x items matrix of predicted stars."""
    if len(items) == 0:
        return np.empty((len(members), 0))
    return np.vstack([model.predicted_stars(m.key, items, m.items, m.scores) for m in members]).astype(np.float64)


def utility(stars: np.ndarray, served: np.ndarray) -> np.ndarray:
    """members x films: predicted stars plus SERVED_WEIGHT x served score (see the module docstring)."""
    return stars + SERVED_WEIGHT * served


def order(stars: np.ndarray, served: np.ndarray, strategy: str, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Column order (best first) of members x films matrices (predicted stars, served scores of
    the same films) under the strategy."""
    if stars.shape[1] == 0:
        return np.empty(0, np.int64)
    value = utility(stars, served)
    mean, low, high = value.mean(axis=0), value.min(axis=0), value.max(axis=0)
    if strategy == "average_without_misery":
        return np.lexsort((-mean, stars.min(axis=0) < floor))
    if strategy == "least_misery":
        return np.lexsort((-mean, -low))
    if strategy == "most_pleasure":
        return np.lexsort((-mean, -high))
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def score_candidates(model, members: list[MemberTaste], allowed: np.ndarray | None = None,
                     per_member: int = CANDIDATES_PER_MEMBER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate films, members x candidates predicted stars, members x candidates served
    scores): films nobody rated or hid, within ``allowed`` (a mask over the catalogue) if given."""
    mask = ~excluded_items(model, members)
    if allowed is not None:
        mask &= allowed
    served = served_scores(model, members)
    pool = candidates(served, mask, per_member)
    return pool, member_stars(model, members, pool), served[:, pool]


def rank_for_group(model, members: list[MemberTaste], *, strategy: str = DEFAULT_STRATEGY, floor: float = DEFAULT_FLOOR,
                   n: int = 20, allowed: np.ndarray | None = None,
                   per_member: int = CANDIDATES_PER_MEMBER) -> list[GroupPick]:
    """The group's top ``n``: never a film a member rated or hid; ``allowed`` (a mask over the
    catalogue) narrows the choice further (filters)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    pool, stars, served = score_candidates(model, members, allowed, per_member)
    best = order(stars, served, strategy, floor)[:n]
    names = [m.name for m in members]
    picks = []
    for column in best.tolist():
        column_stars = stars[:, column]
        item = int(pool[column])
        picks.append(GroupPick(item, [round(float(s), 1) for s in column_stars], float(column_stars.mean()),
                               reasons(model, item, column_stars, members, names, strategy, floor)))
    return picks


# ----------------------------------------------------------------------------- reasons


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def half_star_below(value: float) -> float:
    """The largest half star strictly below value (3.7 -> 3.5, 3.5 -> 3.0)."""
    return math.ceil(value * 2 - 1e-9) / 2 - 0.5


def reasons(model, item: int, stars: np.ndarray, members: list[MemberTaste], names: list[str], strategy: str,
            floor: float) -> list[str]:
    """Why the film is on the group's list, in words; every one true of the figures shown.

    A director some members rate highly ("Ana loves David Fincher"), then how the group's
    predicted stars stand ("Everyone's above 3.5"), or who carries the film (the member with
    the highest predicted stars).
    """
    found = []
    for director in model.item_people[item]:
        fans = [names[j] for j, m in enumerate(members) if director in m.favourite_directors]
        if fans:
            verb = "loves" if len(fans) == 1 else "love"
            found.append(f"{_names(fans)} {verb} {director.split(':', 1)[1]}")
            break
    low = float(stars.min())
    if low > HAPPY_MIN:
        found.append(f"Everyone's above {half_star_below(low):.1f}")
    else:
        if strategy == "most_pleasure" or low < floor:
            keen = int(np.argmax(stars))
            found.append(f"{names[keen]}'s pick ({stars[keen]:.1f} ★)")
        else:
            found.append(f"Nobody below {half_star_below(low):.1f}")
    return found
