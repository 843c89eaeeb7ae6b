"""Scoring one user against the whole catalogue: precomputed representations vs LightFM.predict.

On ml-latest-small (BENCH_SMALL_PATH), one LightFM model with the engine's item and user
features is fitted; then, for the same users in the same run:
- reference: ``LightFM.predict`` over every item id (features re-multiplied per call) + argsort;
- ours: item representations computed once, one matrix-vector product + argpartition
  (and the full served blend with EASE and the neural taste model, as recommend_for_user
  computes it).
Then, for a user with BENCH_STARS_RATINGS (2,000) ratings: the neural user tower (numpy forward
pass) and predicted stars for 20 films from all three stars models (MF fold-in, neighbourhood,
neural head), against the MF fold-in alone (the reference: one small least-squares solve).
Also prints the end-to-end fit time of the served recommender (and of its neural model).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", ROOT.parent / "shared" / "datasets" / "ml-latest-small"))
USERS = int(os.environ.get("BENCH_SCORING_USERS", "50"))
STARS_RATINGS = int(os.environ.get("BENCH_STARS_RATINGS", "2000"))


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
    import django

    django.setup()


def main():
    _setup_django()
    from recommendations import engine
    from recommendations.evaluation import load_release
    from recommendations.recommender import fit_recommender

    data = load_release(SMALL)
    started = time.perf_counter()
    model = fit_recommender(data)
    fit_seconds = time.perf_counter() - started
    print(f"fit of the served recommender on {SMALL.name}: {len(data.scores)} ratings, {data.n_items} movies, "
          f"{fit_seconds:.1f}s (neural taste model {model.neural.train_seconds:.1f}s)")

    matrix = engine.interaction_matrix(data.users, data.items, data.scores, data.n_users, data.n_items)
    item_features, _ = engine.feature_matrix(data.n_items, data.item_features, identity=True)
    affinity = engine.genre_affinity_features(data.users, data.items, data.scores, data.n_users, data.item_genres)
    user_features, _ = engine.feature_matrix(data.n_users, affinity, identity=True)
    lfm = engine.fit_lightfm(matrix, item_features, user_features, components=64, epochs=2)
    item_ids = np.arange(data.n_items, dtype=np.int32)
    users = np.random.default_rng(0).choice(data.n_users, size=min(USERS, data.n_users), replace=False)

    started = time.perf_counter()
    reference_top = []
    for u in users:
        scores = lfm.predict(np.full(data.n_items, u, np.int32), item_ids, item_features=item_features,
                             user_features=user_features, num_threads=1)
        reference_top.append(np.argsort(-scores)[:20])
    reference = (time.perf_counter() - started) / len(users)

    item_bias, item_vectors = lfm.get_item_representations(item_features)
    _, user_vectors = lfm.get_user_representations(user_features)
    started = time.perf_counter()
    ours_top = []
    for u in users:
        ours_top.append(engine.top_k(item_vectors @ user_vectors[u] + item_bias, 20))
    ours = (time.perf_counter() - started) / len(users)
    agree = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(reference_top, ours_top)])

    chosen = set(users.tolist())
    rated = {}
    for u, i, s in zip(data.users.tolist(), data.items.tolist(), data.scores.tolist()):
        if u in chosen:
            rated.setdefault(u, ([], []))[0].append(i), rated[u][1].append(s)
    started = time.perf_counter()
    for u in users:
        items, stars = (np.array(x) for x in rated.get(int(u), ([], [])))
        engine.top_k(model.blended_scores(model.user_vectors[u], items.astype(np.int64), stars.astype(np.float32)), 20)
    served = (time.perf_counter() - started) / len(users)

    print(f"LightFM.predict + argsort, one user x {data.n_items} movies: {reference * 1000:.2f} ms")
    print(f"precomputed representations + argpartition:           {ours * 1000:.2f} ms "
          f"(same top-20 as predict: {agree:.0%})")
    print(f"served blend (LightFM + EASE) + argpartition:          {served * 1000:.2f} ms")
    print(f"speed-up vs LightFM.predict: {reference / ours:.1f}x (served blend: {reference / served:.1f}x)")
    stars_timings(model, data)


def _per_call(function, repeats=50) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def stars_timings(model, data):
    rng = np.random.default_rng(1)
    popular = np.argsort(-model.popularity)[: max(STARS_RATINGS * 2, 1)]
    rated = rng.choice(popular, size=min(STARS_RATINGS, len(popular)), replace=False).astype(np.int64)
    stars = rng.choice(np.arange(1, 11) / 2, size=len(rated)).astype(np.float32)
    targets = np.setdiff1d(popular, rated)[:20]
    reference = _per_call(lambda: model.stars.fold_in(rated, stars))
    tower = _per_call(lambda: model.neural.user_vectors(rated, stars))
    ranking = _per_call(lambda: model.neural_scores(rated, stars))
    predicted = _per_call(lambda: model.predicted_stars(None, targets, rated, stars))
    print(f"user with {len(rated)} ratings: MF fold-in alone (reference) {reference * 1000:.2f} ms; "
          f"neural user tower {tower * 1000:.2f} ms ({tower / reference:.2f}x); neural scores of all "
          f"{data.n_items} movies {ranking * 1000:.2f} ms ({ranking / reference:.2f}x); predicted stars of 20 movies "
          f"(MF + neighbourhood + neural) {predicted * 1000:.2f} ms ({predicted / reference:.2f}x)")
