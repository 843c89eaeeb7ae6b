"""Deterministic latent-taste simulation of the demo users and their ratings.

Nobody rated the demo films on this site, so the demo ships simulated users whose ratings follow
a small generative model with enough structure for a recommender to learn:

- a handful of taste clusters, each tied to genres and to an era (e.g. classic-cinema lovers,
  blockbuster fans, families, horror and thriller fans); every user is a mix leaning on one
  cluster, plus personal noise on each genre and on the preferred decade;
- each film has a latent quality and a popularity; users pick what to watch with a personal
  popularity bias and a pull toward what they expect to like;
- activity follows a log-normal law (a few heavy raters, many light ones);
- the score is a baseline plus the user's leniency, the film's quality, the taste match and
  noise, clipped to 0.5..5.0 and rounded to half stars (some users only give whole stars);
- timestamps fall within the last ~3 years before `now`, denser toward the present, so a
  "trending" window always has data;
- demographics (birth year, gender, occupation) correlate weakly with taste.

Same seed and same `now` give exactly the same users and ratings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from catalog.demo.catalogue import MOVIELENS_GENRES, DemoFilm

DEFAULT_SEED = 20240607
DEFAULT_USERS = 640
MIN_RATINGS, MAX_RATINGS = 15, 150
HISTORY_DAYS = 3 * 365
POPULARITY_BIAS_RANGE = (0.3, 1.0)  # how strongly each user follows the crowd
CHOICE_TASTE_WEIGHT = 3.0  # how strongly users pick films matching their taste

# name -> (genre weights, preferred year, era tolerance in years)
TASTE_CLUSTERS: dict[str, tuple[dict[str, float], int, int]] = {
    "classic cinephile": (
        {"Drama": 0.8, "Film-Noir": 1.6, "War": 0.8, "Western": 1.0, "Mystery": 0.7, "Romance": 0.4,
         "Action": -0.6, "Children": -0.8, "Animation": -0.4, "Sci-Fi": -0.3},
        1960, 18),
    "blockbuster fan": (
        {"Action": 1.3, "Adventure": 1.1, "Sci-Fi": 1.2, "Fantasy": 0.8, "Thriller": 0.4,
         "Drama": -0.5, "Documentary": -1.2, "Romance": -0.6, "Musical": -0.9, "Film-Noir": -0.8},
        2008, 12),
    "family audience": (
        {"Animation": 1.6, "Children": 1.5, "Musical": 0.9, "Comedy": 0.8, "Fantasy": 0.8, "Adventure": 0.5,
         "Horror": -1.6, "Crime": -0.7, "War": -0.8, "Thriller": -0.6},
        2000, 20),
    "thrill seeker": (
        {"Horror": 1.7, "Thriller": 1.1, "Crime": 0.7, "Mystery": 0.7, "Sci-Fi": 0.5,
         "Romance": -0.9, "Musical": -1.2, "Children": -1.2, "Animation": -0.5},
        1990, 16),
    "romantic": (
        {"Romance": 1.5, "Comedy": 1.0, "Drama": 0.6, "Musical": 0.8,
         "Horror": -1.2, "War": -0.8, "Action": -0.6, "Sci-Fi": -0.6, "Western": -0.7},
        1995, 20),
    "arthouse and documentary": (
        {"Documentary": 1.8, "Drama": 1.0, "War": 0.5, "Mystery": 0.3,
         "Action": -0.9, "Children": -0.9, "Adventure": -0.4, "Fantasy": -0.4},
        1985, 25),
}

OCCUPATIONS = (
    "student", "programmer", "engineer", "educator", "artist", "writer", "healthcare", "administrator",
    "executive", "scientist", "technician", "lawyer", "salesman", "homemaker", "entertainment", "retired",
    "other",
)
# Probability that a member of each cluster is female / other (the rest are male): a weak correlation.
_FEMALE_SHARE = {"classic cinephile": 0.40, "blockbuster fan": 0.33, "family audience": 0.58,
                 "thrill seeker": 0.40, "romantic": 0.64, "arthouse and documentary": 0.50}
_OTHER_SHARE = 0.03


@dataclass(frozen=True)
class SimulatedUser:
    index: int  # 1-based; the demo loader names the user "demo-<index>"
    cluster: str
    birth_year: int
    gender: str  # "F", "M" or "O"
    occupation: str


@dataclass(frozen=True)
class SimulatedRatings:
    """Ratings as parallel arrays: user index (into users), film index (into films), score, timestamp."""

    users: list[SimulatedUser]
    user_index: np.ndarray
    film_index: np.ndarray
    score: np.ndarray
    timestamp: np.ndarray  # seconds since the epoch (UTC)
    # The latent tastes behind the ratings (users x films, standardised), the films' hidden quality
    # and each user's leniency: what a simulated user "would do" when shown a film.
    affinity: np.ndarray | None = None
    quality: np.ndarray | None = None
    leniency: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)


def simulate(films: list[DemoFilm], *, n_users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED,
             now: dt.datetime) -> SimulatedRatings:
    """Simulate `n_users` users rating `films`; deterministic for the same films, seed and `now`."""
    rng = np.random.default_rng(seed)
    n_films = len(films)
    cluster_names = list(TASTE_CLUSTERS)
    n_clusters = len(cluster_names)

    film_genres = np.zeros((n_films, len(MOVIELENS_GENRES)))
    for i, film in enumerate(films):
        for genre in film.genres:
            film_genres[i, MOVIELENS_GENRES.index(genre)] = 1.0
    film_genres /= np.sqrt(film_genres.sum(axis=1, keepdims=True))
    years = np.array([film.year for film in films], dtype=float)

    cluster_genres = np.array(
        [[TASTE_CLUSTERS[name][0].get(genre, 0.0) for genre in MOVIELENS_GENRES] for name in cluster_names]
    )
    cluster_year = np.array([TASTE_CLUSTERS[name][1] for name in cluster_names], dtype=float)
    cluster_tolerance = np.array([TASTE_CLUSTERS[name][2] for name in cluster_names], dtype=float)

    # Each user leans on one cluster with a little of the others mixed in.
    primary = rng.integers(0, n_clusters, n_users)
    mix = rng.dirichlet(np.full(n_clusters, 0.25), n_users) * 0.35
    mix[np.arange(n_users), primary] += 0.65
    genre_taste = mix @ cluster_genres + rng.normal(0, 0.35, (n_users, len(MOVIELENS_GENRES)))
    preferred_year = mix @ cluster_year + rng.normal(0, 7, n_users)
    tolerance = mix @ cluster_tolerance * rng.uniform(0.8, 1.25, n_users)

    # A hidden film quality and a popularity that is partly quality, partly recency, partly luck.
    quality = rng.normal(0, 0.45, n_films)
    recency = (years - years.mean()) / years.std()
    log_popularity = 0.9 * quality + 0.45 * recency + rng.normal(0, 0.8, n_films)

    affinity = genre_taste @ film_genres.T - 0.5 * ((years[None, :] - preferred_year[:, None]) / tolerance[:, None]) ** 2
    affinity = (affinity - affinity.mean()) / affinity.std()

    activity = np.clip(np.round(np.exp(rng.normal(np.log(38), 0.65, n_users))), MIN_RATINGS, MAX_RATINGS).astype(int)
    activity = np.minimum(activity, n_films)
    popularity_bias = rng.uniform(*POPULARITY_BIAS_RANGE, n_users)
    leniency = rng.normal(0, 0.35, n_users)
    whole_stars_only = rng.random(n_users) < 0.4
    now_ts = now.timestamp()
    first_day = rng.uniform(0, HISTORY_DAYS, n_users)  # how long ago each user started rating

    user_rows, film_rows, scores, stamps = [], [], [], []
    for u in range(n_users):
        # Weighted sampling without replacement (Gumbel top-k): popular films and films the user
        # expects to like are watched more often.
        logits = popularity_bias[u] * log_popularity + CHOICE_TASTE_WEIGHT * affinity[u]
        keys = logits + rng.gumbel(size=n_films)
        watched = np.argsort(-keys, kind="stable")[: activity[u]]
        raw = (2.9 + leniency[u] + 0.8 * quality[watched] + 0.9 * affinity[u, watched]
               + rng.normal(0, 0.8, len(watched)))
        step = 1.0 if whole_stars_only[u] else 0.5
        score = np.clip(np.round(raw / step) * step, step, 5.0)
        # Days ago: spread between the user's first day and today, denser toward the present.
        days_ago = first_day[u] * rng.random(len(watched)) ** 1.3
        user_rows.append(np.full(len(watched), u))
        film_rows.append(watched)
        scores.append(score)
        stamps.append(np.floor(now_ts - days_ago * 86400 - rng.uniform(0, 3600, len(watched))))

    users = _demographics(rng, cluster_names, primary, preferred_year, now)
    return SimulatedRatings(
        users=users,
        user_index=np.concatenate(user_rows),
        film_index=np.concatenate(film_rows),
        score=np.concatenate(scores),
        timestamp=np.concatenate(stamps).astype(np.int64),
        affinity=affinity,
        quality=quality,
        leniency=leniency,
    )


def _demographics(rng, cluster_names, primary, preferred_year, now) -> list[SimulatedUser]:
    """Birth year follows the preferred era a little; gender and occupation follow the cluster weakly."""
    users = []
    for u, cluster_id in enumerate(primary):
        cluster = cluster_names[cluster_id]
        birth_year = int(np.clip(round(1978 + 0.35 * (preferred_year[u] - 1990) + rng.normal(0, 12)),
                                 1935, now.year - 16))
        draw = rng.random()
        gender = "O" if draw < _OTHER_SHARE else ("F" if draw < _OTHER_SHARE + _FEMALE_SHARE[cluster] else "M")
        age = now.year - birth_year
        if age < 24 and rng.random() < 0.6:
            occupation = "student"
        elif age > 66 and rng.random() < 0.7:
            occupation = "retired"
        else:
            occupation = OCCUPATIONS[int(rng.integers(1, len(OCCUPATIONS) - 2))] if rng.random() < 0.9 else "other"
        users.append(SimulatedUser(index=u + 1, cluster=cluster, birth_year=birth_year, gender=gender,
                                   occupation=occupation))
    return users
