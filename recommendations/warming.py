"""Top-N lists of many users at once, for warming the cache after a publish.

The list of each user is the one ``selectors.recommend_for_user`` serves (same state, same blend,
same re-ranking, stars and reasons), computed for a chunk of users together: their ratings,
hidden films, stored vectors, picked genres and dial positions in one query each instead of
five per user, and the model's scores as matrix products over the chunk (LightFM, EASE and the
neural model's ranking vectors: Recommender.blended_scores_many, which a single user's list goes
through too) instead of one product per user. What stays per user is the small work on their own
top candidates (re-ranking, predicted stars, reasons).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.contrib.auth import get_user_model

from catalog.models import Movie, NotInterested, Rating
from recommendations import engine, rerank, selectors
from recommendations.models import DiscoveryPreference, GenrePreference, UserVector
from recommendations.recommender import Recommender


def recommend_for_users(model: Recommender, user_ids: list[int], *, n: int) -> dict[int, list]:
    """{user id: their top-n Recommendations}, as recommend_for_user would give each of them."""
    User = get_user_model()
    users = User.objects.in_bulk(list(user_ids))
    ids = [pk for pk in user_ids if pk in users]
    if not ids:
        return {}
    rated: dict[int, dict] = defaultdict(dict)
    for user_id, movie_id, score in Rating.objects.filter(user_id__in=ids).values_list("user_id", "movie_id", "score"):
        rated[user_id][movie_id] = score
    hidden: dict[int, set] = defaultdict(set)
    for user_id, movie_id in NotInterested.objects.filter(user_id__in=ids).values_list("user_id", "movie_id"):
        hidden[user_id].add(movie_id)
    stored = dict(UserVector.objects.filter(user_id__in=ids, model_version_id=model.version_id)
                  .values_list("user_id", "vector"))
    picked: dict[int, list] = defaultdict(list)
    for user_id, genre in GenrePreference.objects.filter(user_id__in=ids).values_list("user_id", "genre__name"):
        picked[user_id].append(genre)
    levels = dict(DiscoveryPreference.objects.filter(user_id__in=ids).values_list("user_id", "level"))

    states, features = [], []
    for pk in ids:
        states.append(_state(model, users[pk], rated[pk], hidden[pk], stored.get(pk)))
        features.append(selectors.profile_features(users[pk], picked[pk]))
    scores = model.blended_scores_many(states, features)

    vocabulary = {g: j for j, g in enumerate(sorted(model.genre_masks))}
    candidates = {}
    for row, (pk, state) in enumerate(zip(ids, states)):
        row_scores = scores[row].astype(np.float64)
        row_scores[state.items] = -np.inf
        row_scores[state.hidden_items] = -np.inf
        liked = state.items[engine.is_positive(state.scores, float(state.scores.mean()))] if len(state.items) else state.items
        target = rerank.user_target(model.item_genres, vocabulary, liked, picked[pk])
        level = levels.get(pk, rerank.DEFAULT_DISCOVERY)
        best = rerank.rerank(row_scores, selectors.served_window(n), item_genres=model.item_genres, popularity=model.popularity,
                             target=target, vocabulary=vocabulary, strength=rerank.strength_for(len(state.rated_ids)),
                             head=rerank.head_for(len(state.rated_ids)),
                             discovery=level).tolist()
        candidates[pk] = (best, row_scores)
    movies = Movie.objects.in_bulk({int(model.item_keys[i]) for best, _ in candidates.values() for i in best})

    lists = {}
    for pk, state, names in zip(ids, states, features):
        best, row_scores = candidates[pk]
        best, stars = selectors.served_picks(model, pk, state, names, best, movies, n)
        if not best:
            lists[pk] = selectors.recommend_for_user(users[pk], n=n)  # the popular fallback, as served
            continue
        reasons = selectors.Explainer(model, state, picked[pk]).explain_many(best)
        lists[pk] = [selectors.Recommendation(movies[int(model.item_keys[i])], float(row_scores[i]), round(float(s), 1),
                                              reasons[i]) for i, s in zip(best, stars)]
    return lists


def _state(model: Recommender, user, rated_ids: dict, hidden_ids: set, stored) -> selectors.UserState:
    """selectors.load_user_state from rows already read."""
    pairs = [(model.item_index[m], s) for m, s in rated_ids.items() if m in model.item_index]
    items = np.array([p[0] for p in pairs], dtype=np.int64)
    scores = np.array([p[1] for p in pairs], dtype=np.float32)
    hidden_items = np.array([model.item_index[m] for m in hidden_ids if m in model.item_index], dtype=np.int64)
    if stored is not None:
        vector = np.frombuffer(bytes(stored), dtype=np.float32)
    elif user.pk in model.user_index:
        vector = model.user_vectors[model.user_index[user.pk]]
    else:
        vector = selectors.fold_in_user(user, model, items, scores, hidden_items)
    return selectors.UserState(dict(rated_ids), set(hidden_ids), items, scores, hidden_items, vector)
