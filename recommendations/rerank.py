"""The last step of the served list: calibrated to the user's genre mix, moved along the discovery dial.

A ranking model alone drifts to the mainstream: a sci-fi fan's list fills up with whatever
everybody watches. Calibration (Steck 2018, "Calibrated Recommendations") picks the list
greedily, trading each film's score against how far the genre mix of the list so far would be
from the genre mix of the films the user liked:

    maximise  (1 - λ) · Σ score(i)  -  λ · KL(p ‖ q̃),   q̃ = (1 - α) q + α p,  α = 0.01

where p(g) is the user's mix (each liked film spreads one unit over its genres; genres picked
at onboarding count as PICKED_GENRE_WEIGHT films), q(g) the same over the list. The list opens
with the CALIBRATION_HEAD best-scored films, and the greedy fills the rest around them. Only the
CANDIDATES best-scored films are considered, so it costs a few milliseconds per list. The
greedy order decides which films make each BLOCK of the list; within a block they are shown
best score first.

A user with fewer than FEW_RATINGS ratings gets stronger calibration (strength_for): their
scores are mostly the model's prior, so the genres they picked at onboarding lead.

The discovery dial moves the candidates' scores by their popularity before that: from
"popular" (known films first) to "hidden gems" (films fewer people rated), by DIAL_STEP times
each candidate's popularity rank among the candidates (-0.5 to 0.5) per position (dial_penalty).

λ (CALIBRATION_STRENGTH) is what `manage.py evaluate` chose on the validation splits of
ml-latest-small under msr (recommendations.evaluation.tune_rerank; README "Measured"); DIAL_STEP
was set so that the films picked fall steadily in popularity over the five positions on the
training parts of ml-latest-small and ml-100k (README "Measured").
Pure numpy, no Django: the site (recommendations.selectors) and the evaluation share it.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from recommendations import engine

CANDIDATES = 300
BLOCK = 10  # a list is read a screenful at a time: each block of picks is shown best score first
SMOOTHING = 0.01  # Steck's α: q̃ never has a zero where p has mass
CALIBRATION_STRENGTH = 0.7  # chosen on the ml-latest-small msr validation splits (README "Measured")
# The best-scored films that open a calibrated list whatever their genres; calibration picks the
# rest around them. Keeping two cost no calibration on ml-latest-small and ml-100k (msr test
# splits) and kept 0.2-0.8% of nDCG@10 at strength 0.75 (up to 1.5% at 0.85):
# the greedy would otherwise pass over a film the user very likely wants because its genres are
# rare in their history (README "Measured").
CALIBRATION_HEAD = 2
PICKED_GENRE_WEIGHT = 3.0
# Below this many ratings the model's scores say little about the user (at none they are its
# prior: popularity and demographics), so calibration to the genres they picked or liked takes
# over, in full for a user with no rating.
FEW_RATINGS = 5
DIAL_STEP = 2.0

DISCOVERY_LEVELS = {0: "Popular", 1: "Mostly popular", 2: "Balanced", 3: "Lesser known", 4: "Hidden gems"}
DEFAULT_DISCOVERY = 2
# A film the user is predicted to rate below this (or below their own mean, for a harsh rater)
# goes after the others in a served list: the ranking models rank what people like them watch,
# including films they watched and disliked (a romance fan who rated The Terminator 1 star is
# offered Terminator 2 because its fans watched both); the predicted stars say whether this
# user would like it. Below 2.5 is closer to MovieLens's "fairly bad" (2) than to "it's OK" (3).
# A floor of 3 moved 2.6% of the films of the top 10s on ml-latest-small and cost 0.6-0.9% of
# nDCG@10 under msr, which counts every film a user went on to rate as a hit, 1-star ones
# included; 2.5 moved 0.7% and cost 0.05-0.2% (README "Measured").
PICK_MIN_STARS = 2.5
# How many films past the n asked for are scored for stars, so demoted ones can be replaced.
DEMOTION_SLACK = 10


def genre_vocabulary(item_genres) -> dict[str, int]:
    """{genre name: column} over every genre of the catalogue, in name order."""
    return {g: j for j, g in enumerate(sorted({g for genres in item_genres for g in genres}))}


def genre_shares(item_genres, items, vocabulary: dict[str, int]) -> np.ndarray:
    """len(items) x genres: each film spreads one unit over its genres (p(g|i)); films without a
    genre get a row of zeros (they neither count for nor against a mix)."""
    rows = np.zeros((len(items), len(vocabulary)), np.float64)
    for r, i in enumerate(np.asarray(items).tolist()):
        columns = [vocabulary[g] for g in item_genres[i] if g in vocabulary]
        if columns:
            rows[r, columns] = 1.0 / len(columns)
    return rows


def genre_mix(shares: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray | None:
    """The normalised genre distribution of rows of genre_shares (plus ``extra`` mass); None if empty."""
    total = shares.sum(axis=0) if len(shares) else np.zeros(shares.shape[1])
    if extra is not None:
        total = total + extra
    mass = total.sum()
    return total / mass if mass > 0 else None


def calibration_kl(target: np.ndarray, mix: np.ndarray, alpha: float = SMOOTHING) -> np.ndarray:
    """KL(p ‖ q̃) with Steck's smoothing; ``mix`` may be one distribution or a matrix of them (rows)."""
    present = target > 0
    p = target[present]
    q = np.asarray(mix)[..., present]
    return np.sum(p * np.log(p / ((1 - alpha) * q + alpha * p)), axis=-1)


def user_target(item_genres, vocabulary, liked_items, picked_genres=()) -> np.ndarray | None:
    """The genre mix the user's list is calibrated to: their liked films, plus picked genres."""
    extra = None
    picked = [vocabulary[g] for g in picked_genres if g in vocabulary]
    if picked:
        extra = np.zeros(len(vocabulary))
        extra[picked] = PICKED_GENRE_WEIGHT / len(picked)
    return genre_mix(genre_shares(item_genres, liked_items, vocabulary), extra)


def strength_for(n_rated: int, strength: float = CALIBRATION_STRENGTH) -> float:
    """The calibration strength for a user with n_rated ratings (see FEW_RATINGS)."""
    if n_rated >= FEW_RATINGS:
        return strength
    return strength + (1 - strength) * (1 - n_rated / FEW_RATINGS)


def head_for(n_rated: int) -> int:
    """How many best-scored films open the calibrated list of a user with n_rated ratings:
    CALIBRATION_HEAD, none below FEW_RATINGS (there the scores are mostly the model's prior, and
    the genres the user picked lead)."""
    return CALIBRATION_HEAD if n_rated >= FEW_RATINGS else 0


def dial_penalty(popularity: np.ndarray, offset: float) -> np.ndarray:
    """What the dial takes off each candidate's score: ``offset`` times how popular it is among the
    candidates, by rank, from -0.5 (the least rated) to 0.5 (the most). By rank, so one step moves a
    list by the same amount whatever the spread of the catalogue's popularity. Films nobody has
    rated take the largest penalty either way: they are not popular, and nothing says they are
    hidden gems, so the dial never moves them up."""
    popularity = np.asarray(popularity, np.float64)
    penalty = np.full(len(popularity), 0.5 * abs(offset))
    rated = popularity > 0
    if rated.any():
        penalty[rated] = offset * ((rankdata(popularity[rated]) - 0.5) / rated.sum() - 0.5)
    return penalty


def dial_offset(discovery: int) -> float:
    """Standard deviations of log-popularity subtracted per unit: <0 favours popular films."""
    return DIAL_STEP * (int(discovery) - DEFAULT_DISCOVERY)


def rerank(scores: np.ndarray, n: int, *, item_genres, popularity: np.ndarray, target: np.ndarray | None,
           vocabulary: dict[str, int], strength: float = CALIBRATION_STRENGTH,
           discovery: int = DEFAULT_DISCOVERY, head: int = 0) -> np.ndarray:
    """Indices of the n films to serve, in order, from ``scores`` (-inf = not allowed).

    ``scores`` should be on a per-user standardised scale (the served blend's): λ trades one
    standard deviation of score against one nat of KL. The ``head`` best-scored films (after the
    dial) open the list whatever their genres (head_for). With no target (nothing liked yet, no
    picked genre) or strength 0, only the dial applies.
    """
    candidates = engine.top_k(scores, CANDIDATES)
    candidates = candidates[np.isfinite(scores[candidates])]
    if len(candidates) == 0 or n <= 0:
        return candidates[:0]
    relevance = scores[candidates].astype(np.float64)
    offset = dial_offset(discovery)
    if offset:
        relevance = relevance - dial_penalty(popularity[candidates], offset)
    if target is None or strength <= 0:
        return candidates[np.argsort(-relevance, kind="stable")[:n]]
    shares = genre_shares(item_genres, candidates, vocabulary)
    # calibration_kl of each candidate's list-so-far mix, computed on the target's genres only
    # (the other genres only add to the mix's mass).
    present = target > 0
    p, row_mass, shares_present = target[present], shares.sum(axis=1), shares[:, present]
    chosen = []
    available = np.ones(len(candidates), bool)
    so_far, so_far_mass = np.zeros(len(p)), 0.0
    for best in np.argsort(-relevance, kind="stable")[:min(head, n)]:
        chosen.append(int(best))
        available[best] = False
        so_far += shares_present[best]
        so_far_mass += row_mass[best]
    for _ in range(min(n, len(candidates)) - len(chosen)):
        mass = (so_far_mass + row_mass)[:, None]
        q = np.divide(so_far + shares_present, mass, out=np.zeros_like(shares_present), where=mass > 0)
        kl = np.sum(p * np.log(p / ((1 - SMOOTHING) * q + SMOOTHING * p)), axis=1)
        objective = (1 - strength) * relevance - strength * kl
        objective[~available] = -np.inf
        best = int(np.argmax(objective))
        chosen.append(best)
        available[best] = False
        so_far += shares_present[best]
        so_far_mass += row_mass[best]
    # Calibration decides which films make each block; within a block the best-scored come first
    # (on validation this keeps nDCG@10 where the greedy order would lose a few percent).
    blocks = [sorted(chosen[start:start + BLOCK], key=lambda c: -relevance[c]) for start in range(0, len(chosen), BLOCK)]
    return candidates[[c for block in blocks for c in block]]


def served_window(n: int, cached_n: int) -> int:
    """How many re-ranked films a served list of n is chosen from, when lists of cached_n are kept:
    as many as the kept lists hold, plus DEMOTION_SLACK, whatever n is, so a short list computed
    directly (a cache miss, Redis down) is the start of the kept one even when films predicted to
    be disliked are moved back."""
    return max(n, cached_n) + DEMOTION_SLACK


def pick_min_stars(rated_scores) -> float:
    """The fewest predicted stars a pick may have for a user with these ratings (PICK_MIN_STARS,
    or their mean rating if lower)."""
    return min(PICK_MIN_STARS, float(np.mean(rated_scores))) if len(rated_scores) else PICK_MIN_STARS


def demote_unlikely(best: np.ndarray, stars: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """``best`` and their predicted ``stars`` with the films predicted below ``floor`` moved after
    the others; each group keeps its order."""
    order = np.argsort(np.asarray(stars) < floor, kind="stable")
    return np.asarray(best)[order], np.asarray(stars)[order]
