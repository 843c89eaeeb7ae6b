"""Write a synthetic MovieLens CSV release with the shape of the real thing, for scale tests.

Movie popularity and user activity follow power laws (a few blockbusters and heavy raters, a
long tail of both), scores are half stars clustered around 3.5-4 with whole stars more common
than halves, and each user's timestamps rise through a rating "career". Ratings are written
user by user, so memory stays bounded whatever the size.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

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
    cumulative[-1] = 1.0
    quality = rng.normal(0, 0.45, movies)
    years = rng.integers(1920, 2024, movies)
    with open(out / "movies.csv", "w", newline="", encoding="utf-8") as m, open(out / "links.csv", "w", newline="") as ln:
        movies_csv, links_csv = csv.writer(m, lineterminator="\n"), csv.writer(ln, lineterminator="\n")
        movies_csv.writerow(["movieId", "title", "genres"])
        links_csv.writerow(["movieId", "imdbId", "tmdbId"])
        for index in range(movies):
            genres = rng.choice(len(GENRES), size=int(rng.integers(1, 4)), replace=False)
            movies_csv.writerow([index + 1, f"Synthetic Movie {index + 1} ({years[index]})", "|".join(GENRES[g] for g in sorted(genres))])
            links_csv.writerow([index + 1, "", ""])

    activity = _activity(rng, users, movies, ratings)
    tags_written = 0
    with open(out / "ratings.csv", "w", encoding="ascii") as r, open(out / "tags.csv", "w", newline="", encoding="utf-8") as t, tqdm(
        total=ratings, unit=" ratings", unit_scale=True, desc="Generating ratings", disable=not progress
    ) as bar:
        r.write("userId,movieId,rating,timestamp\n")
        tags_csv = csv.writer(t, lineterminator="\n")
        tags_csv.writerow(["userId", "movieId", "tag", "timestamp"])
        for user_index, count in enumerate(activity):
            user_id = user_index + 1
            picked = _pick_movies(rng, cumulative, int(count))
            raw = 3.55 + rng.normal(0, 0.4) + quality[picked] + rng.normal(0, 0.8, len(picked))
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
