"""A small catalogue with clear tastes (the pipeline tests need a model that beats popularity).

Three genres of 20 films; each user loves 12 films of one genre and dislikes 2 of another, so
a fitted model ranks the user's own genre first while popularity cannot tell them apart.
"""
import random

from django.utils import timezone

from catalog.models import Rating
from catalog.services import refresh_movie_stats
from tests.factories import make_movie, make_user

GENRES = ("Western", "Musical", "Horror")


def make_taste_catalogue(*, users_per_genre: int = 15, films_per_genre: int = 20, seed: int = 7):
    """Create the films, users and ratings; returns {genre: [users]} (users logged in today)."""
    rng = random.Random(seed)
    films = {genre: [make_movie(f"{genre} {i}", genres=[genre]) for i in range(films_per_genre)] for genre in GENRES}
    now = timezone.now()
    groups, ratings = {}, []
    for g, genre in enumerate(GENRES):
        other = GENRES[(g + 1) % len(GENRES)]
        groups[genre] = []
        for _ in range(users_per_genre):
            user = make_user(last_login=now)
            groups[genre].append(user)
            for movie in rng.sample(films[genre], 12):
                ratings.append(Rating(user=user, movie=movie, score=rng.choice([4.0, 4.5, 5.0]), created_at=now, updated_at=now))
            for movie in rng.sample(films[other], 2):
                ratings.append(Rating(user=user, movie=movie, score=rng.choice([1.0, 1.5, 2.0]), created_at=now, updated_at=now))
    Rating.objects.bulk_create(ratings)
    refresh_movie_stats()
    return groups


FAST_FIT = {"epochs": 5, "components": 16, "stars_iterations": 2}


def make_popularity_catalogue(*, users: int = 40, seed: int = 3):
    """Everyone rates the same five films plus three random others: popularity is hard to beat."""
    rng = random.Random(seed)
    films = [make_movie(f"Film {i}") for i in range(40)]
    now = timezone.now()
    ratings = []
    for _ in range(users):
        user = make_user(last_login=now)
        for movie in films[:5] + rng.sample(films[5:], 3):
            ratings.append(Rating(user=user, movie=movie, score=rng.choice([3.5, 4.0, 4.5]), created_at=now, updated_at=now))
    Rating.objects.bulk_create(ratings)
    refresh_movie_stats()


# LightFM alone with a zero learning rate: a random ranking, which the holdout check must reject.
UNTRAINED_FIT = {"epochs": 1, "learning_rate": 0.0, "blend_lightfm": 1.0, "components": 4, "stars_iterations": 1}
