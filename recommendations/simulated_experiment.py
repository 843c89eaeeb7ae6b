"""A simulated A/B experiment on the demo catalogue: the demo's simulated users are served their
home page by the site's own code (their experiment arm's model version, logged as impressions)
and "open", watchlist, "rate" and hide films following the latent tastes the demo's ratings
were drawn from (catalog.demo.simulation). Used by ``manage.py simulate_experiment``.

The reaction model (per film shown, position p from 0, affinity a and hidden quality q of the
simulation, a standardised):
- opens its page with probability sigmoid(-3.4 + 1.2 a + 0.8 q - 0.06 p);
- once opened, rates it with probability sigmoid(-0.4 + 0.8 a), with the stars the simulation
  would give (2.9 + leniency + 0.8 q + 0.9 a + noise, half stars); otherwise puts it on the
  watchlist with probability 0.25;
- hides it unopened with probability sigmoid(-5.5 - 1.5 a).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog import services as catalog_services
from catalog.demo.catalogue import load_films
from catalog.demo.loader import _existing_movie_ids, demo_external_id
from catalog.demo.simulation import DEFAULT_SEED, DEFAULT_USERS, simulate
from catalog.models import Movie, NotInterested
from recommendations import cache, impressions, selectors


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Totals:
    pages: int = 0
    shown: int = 0
    opened: int = 0
    rated: int = 0
    watchlisted: int = 0
    hidden: int = 0


def simulate_visits(*, days: int = 7, users: int = 200, seed: int = 16, end: datetime | None = None,
                    log=print) -> Totals:
    """Every one of ``users`` simulated users (a seeded sample) visits their home page once a day
    for ``days`` days ending at ``end`` (default now) and reacts to what it shows."""
    films = load_films()
    simulation = simulate(films, n_users=DEFAULT_USERS, seed=DEFAULT_SEED, now=timezone.now())
    movie_ids = _existing_movie_ids(films)
    film_of = {movie_ids[film.key]: i for i, film in enumerate(films) if film.key in movie_ids}
    User = get_user_model()
    by_external = {u.external_id: u for u in User.objects.filter(source=User.Source.SIMULATED)}
    rng = random.Random(seed)
    sample = rng.sample(range(1, len(simulation.users) + 1), min(users, len(simulation.users)))
    people = [(index - 1, by_external[demo_external_id(index)]) for index in sample
              if demo_external_id(index) in by_external]
    end = end or timezone.now()
    totals = Totals()
    for day in range(days):
        start = end - timedelta(days=days - day)
        for u, user in people:
            at = start + timedelta(seconds=rng.uniform(0, 20 * 3600))
            top = cache.get_recommendations(user, n=12)
            rows = selectors.home_rows(user, top_picks=top, n=12)
            impressions.log_rows(user, [(row.key, [item.movie for item in row.items]) for row in rows], at=at)
            totals.pages += 1
            for row in rows:
                for position, item in enumerate(row.items):
                    totals.shown += 1
                    react(user, item.movie, position, simulation, film_of, u, rng, at, totals)
        log(f"day {day + 1}/{days}: {totals.pages} pages, {totals.shown} shown, {totals.opened} opened, "
            f"{totals.rated} rated")
    return totals


def react(user, movie: Movie, position: int, simulation, film_of: dict, u: int, rng: random.Random,
          at: datetime, totals: Totals) -> None:
    """What simulated user u does about one film shown (see the module docstring)."""
    f = film_of.get(movie.pk)
    if f is None:
        return
    a, q = float(simulation.affinity[u, f]), float(simulation.quality[f])
    when = at + timedelta(seconds=30 + position)
    if rng.random() < _sigmoid(-3.4 + 1.2 * a + 0.8 * q - 0.06 * position):
        totals.opened += 1
        impressions.log_outcome(user, movie.pk, "opened", at=when)
        if rng.random() < _sigmoid(-0.4 + 0.8 * a):
            raw = 2.9 + float(simulation.leniency[u]) + 0.8 * q + 0.9 * a + rng.gauss(0, 0.8)
            stars = float(np.clip(round(raw * 2) / 2, 0.5, 5.0))
            catalog_services.rate_movie(user=user, movie=movie, score=stars, rated_at=when + timedelta(minutes=2))
            impressions.log_outcome(user, movie.pk, "rated", stars=stars, at=when + timedelta(minutes=2))
            totals.rated += 1
        elif rng.random() < 0.25:
            catalog_services.add_to_watchlist(user=user, movie=movie, added_at=when + timedelta(minutes=1))
            impressions.log_outcome(user, movie.pk, "watchlisted", at=when + timedelta(minutes=1))
            totals.watchlisted += 1
    elif rng.random() < _sigmoid(-5.5 - 1.5 * a):
        NotInterested.objects.get_or_create(user=user, movie=movie)  # (hide_movie would log it at today's time)
        impressions.log_outcome(user, movie.pk, "hidden", at=when)
        totals.hidden += 1
