"""Write a synthetic MovieLens CSV release with the shape of the real thing, for scale tests.

Movie popularity and user activity follow power laws (a few blockbusters and heavy raters, a
long tail of both), scores are half stars clustered around 3.5-4 with whole stars more common
than halves, and each user's timestamps rise through a rating "career". Ratings are written
user by user, so memory stays bounded whatever the size.

Tastes are latent, as in the demo simulation (catalog.demo.simulation): every user leans on one
of its taste clusters (genres and an era) with personal noise, and *what* they watch and *how
much they like it* both follow the match between their taste and the film's genres and year.
Each user draws a pool of films by popularity (three times their activity) and keeps the ones
they expect to like (Gumbel top-k on the taste match), so the work per user is proportional to
their ratings, not to the catalogue. A recommender that learns tastes therefore beats
popularity on a generated release, as it does on real data.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from catalog.demo.simulation import CHOICE_TASTE_WEIGHT, TASTE_CLUSTERS

GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
TAG_WORDS = ["funny", "atmospheric", "twist ending", "classic", "dark comedy", "visually appealing", "slow", "boring"]
MIN_RATINGS_PER_USER = 20  # what MovieLens guarantees for the users it releases
EPOCH_START, EPOCH_END = 820_454_400, 1_700_000_000  # 1996-01-01 .. 2023-11


@dataclass
class GeneratedRelease:
    path: Path
    users: int
    movies: int
    ratings: int
    tags: int


def _activity(rng, users: int, movies: int, ratings: int) -> np.ndarray:
    """Ratings per user: Pareto-distributed, at least min(20, R/N) each, summing exactly to `ratings`."""
    floor = min(MIN_RATINGS_PER_USER, ratings // users, movies)
    weights = rng.pareto(1.2, users) + 1
    counts = np.full(users, floor, dtype=np.int64)
    extra = ratings - floor * users
    counts += np.floor(weights / weights.sum() * extra).astype(np.int64)
    counts = np.minimum(counts, movies)
    order = np.argsort(-weights)
    deficit = ratings - int(counts.sum())
    while deficit > 0:
        room = order[counts[order] < movies]
        if not len(room):
            raise ValueError("more ratings asked for than users x movies")
        step = room[:deficit]
        counts[step] += 1
        deficit -= len(step)
    return counts


def _pick_movies(rng, cumulative: np.ndarray, k: int) -> np.ndarray:
    """k distinct movie indexes drawn by popularity (inverse-CDF sampling, topped up until enough)."""
    n = len(cumulative)
    if k > n // 2:
        return np.sort(rng.choice(n, size=k, replace=False, p=np.diff(cumulative, prepend=0.0)))
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < k:
        draws = np.searchsorted(cumulative, rng.random(int((k - len(chosen)) * 1.5) + 8), side="right")
        chosen = np.unique(np.concatenate([chosen, np.minimum(draws, n - 1)]))
    if len(chosen) > k:
        chosen = np.sort(rng.choice(chosen, size=k, replace=False))
    return chosen


def generate_release(out, *, users: int, movies: int, ratings: int, seed: int = 0, progress: bool = True) -> GeneratedRelease:
    """Write movies.csv, links.csv, ratings.csv and tags.csv under `out`; see the module docstring."""
    if min(users, movies, ratings) < 1:
        raise ValueError("users, movies and ratings must all be positive")
    if ratings < users:
        raise ValueError("every user needs at least one rating: ratings must be >= users")
    if ratings > users * movies:
        raise ValueError("more ratings asked for than users x movies")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    popularity = 1.0 / np.arange(1, movies + 1) ** 0.9
    rng.shuffle(popularity)  # popular movies are spread over the id range, as in MovieLens
    cumulative = np.cumsum(popularity / popularity.sum())
    log_popularity = np.log(popularity / popularity.max())  # the crowd still pulls within a user's pool
    cumulative[-1] = 1.0
    quality = rng.normal(0, 0.45, movies)
    years = rng.integers(1920, 2024, movies)
    film_genres = np.zeros((movies, len(GENRES)), np.float32)
    with open(out / "movies.csv", "w", newline="", encoding="utf-8") as m, open(out / "links.csv", "w", newline="") as ln:
        movies_csv, links_csv = csv.writer(m, lineterminator="\n"), csv.writer(ln, lineterminator="\n")
        movies_csv.writerow(["movieId", "title", "genres"])
        links_csv.writerow(["movieId", "imdbId", "tmdbId"])
        for index in range(movies):
            genres = rng.choice(len(GENRES), size=int(rng.integers(1, 4)), replace=False)
            film_genres[index, genres] = 1.0 / np.sqrt(len(genres))
            movies_csv.writerow([index + 1, f"Synthetic Movie {index + 1} ({years[index]})", "|".join(GENRES[g] for g in sorted(genres))])
            links_csv.writerow([index + 1, "", ""])

    activity = _activity(rng, users, movies, ratings)
    taste = _tastes(rng, users)
    # Affinity is standardised with the mean and spread of a sample, so its scale does not depend on the size.
    sample_u = rng.integers(0, users, min(users, 500))
    sample_m = rng.integers(0, movies, min(movies, 2000))
    sample = _affinity(taste, sample_u[:, None], film_genres[sample_m], years[sample_m])
    aff_mean, aff_std = float(sample.mean()), float(sample.std()) or 1.0
    tags_written = 0
    with open(out / "ratings.csv", "w", encoding="ascii") as r, open(out / "tags.csv", "w", newline="", encoding="utf-8") as t, tqdm(
        total=ratings, unit=" ratings", unit_scale=True, desc="Generating ratings", disable=not progress
    ) as bar:
        r.write("userId,movieId,rating,timestamp\n")
        tags_csv = csv.writer(t, lineterminator="\n")
        tags_csv.writerow(["userId", "movieId", "tag", "timestamp"])
        for user_index, count in enumerate(activity):
            user_id = user_index + 1
            pool = _pick_movies(rng, cumulative, min(movies, 3 * int(count)))
            affinity = (_affinity(taste, user_index, film_genres[pool], years[pool]) - aff_mean) / aff_std
            keys = CHOICE_TASTE_WEIGHT * affinity + log_popularity[pool] + rng.gumbel(size=len(pool))
            chosen = np.sort(np.argpartition(-keys, int(count) - 1)[: int(count)]) if count < len(pool) else np.arange(len(pool))
            picked, affinity = pool[chosen], affinity[chosen]
            raw = (3.05 + taste.leniency[user_index] + 0.8 * quality[picked] + 0.9 * affinity
                   + rng.normal(0, 0.75, len(picked)))
            whole = rng.random(len(picked)) < 0.55
            stars = np.where(whole, np.round(raw), np.round(raw * 2) / 2)
            stars = np.clip(stars, 0.5, 5.0)
            start = rng.integers(EPOCH_START, EPOCH_END - 86_400)
            span = min(int(rng.exponential(86_400 * 120)) + 3600, EPOCH_END - start)
            stamps = np.sort(rng.integers(start, start + span, len(picked)))
            r.write("".join(f"{user_id},{movie + 1},{score:.1f},{stamp}\n" for movie, score, stamp in zip(picked.tolist(), stars.tolist(), stamps.tolist())))
            tagged = np.flatnonzero(rng.random(len(picked)) < 0.02)
            for i in tagged.tolist():
                tags_csv.writerow([user_id, int(picked[i]) + 1, TAG_WORDS[int(rng.integers(len(TAG_WORDS)))], int(stamps[i])])
            tags_written += len(tagged)
            bar.update(len(picked))
    return GeneratedRelease(out, users, movies, ratings, tags_written)


@dataclass
class _Tastes:
    genre: np.ndarray  # users x genres
    year: np.ndarray  # preferred year per user
    tolerance: np.ndarray  # era tolerance in years per user
    leniency: np.ndarray


def _tastes(rng, users: int) -> _Tastes:
    """Each user leans on one taste cluster with a little of the others mixed in (as the demo simulation)."""
    names = list(TASTE_CLUSTERS)
    cluster_genres = np.array([[TASTE_CLUSTERS[n][0].get(g, 0.0) for g in GENRES] for n in names])
    cluster_year = np.array([TASTE_CLUSTERS[n][1] for n in names], dtype=float)
    cluster_tolerance = np.array([TASTE_CLUSTERS[n][2] for n in names], dtype=float)
    primary = rng.integers(0, len(names), users)
    mix = rng.dirichlet(np.full(len(names), 0.25), users) * 0.35
    mix[np.arange(users), primary] += 0.65
    genre = (mix @ cluster_genres + rng.normal(0, 0.35, (users, len(GENRES)))).astype(np.float32)
    year = mix @ cluster_year + rng.normal(0, 7, users)
    tolerance = mix @ cluster_tolerance * rng.uniform(0.8, 1.25, users)
    return _Tastes(genre, year, tolerance, rng.normal(0, 0.35, users))


def _affinity(taste: _Tastes, user, film_genres: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Taste match of user(s) and films: genre taste · film genres minus the distance to the preferred era."""
    era = (years - taste.year[user]) / taste.tolerance[user]
    return (taste.genre[user] @ film_genres.T if np.ndim(user) == 0
            else np.einsum("ug,mg->um", taste.genre[user[:, 0]], film_genres)) - 0.5 * era ** 2
