"""The neural taste model on generated ratings: what the numpy export computes, what serving
imports, and the tastes it learns (no database: arrays in, arrays out)."""
import pickle
import subprocess
import sys

import numpy as np

from recommendations import engine
from recommendations.neural import fit_neural, network_user_vectors, train_network
from recommendations.recommender import TrainingData, fit_recommender

GENRES = ("Western", "Musical", "Horror")
FILMS_PER_GENRE = 20
FAST = {"neural_epochs": 80, "neural_min_steps": 0, "neural_dim": 16, "neural_hidden": 32, "threads": 1, "seed": 5}


def taste_data(*, users_per_genre=12, seed=3) -> TrainingData:
    """Three genres of 20 films (each genre with its own director), plus one film per genre that
    nobody has rated; each user rates 10 films of their genre 4-5 stars and 2 films of the next
    genre 1-2 stars. Users of the first genre are women, the others men."""
    rng = np.random.default_rng(seed)
    item_genres, item_features = [], []
    for g in GENRES:
        for i in range(FILMS_PER_GENRE + 1):
            item_genres.append([g])
            item_features.append([f"genre:{g}", f"director:{g} Director", f"decade:{1970 + 10 * (i % 4)}"])
    n_items = len(item_genres)
    films = {g: [k * (FILMS_PER_GENRE + 1) + i for i in range(FILMS_PER_GENRE)] for k, g in enumerate(GENRES)}
    users, items, scores, user_features = [], [], [], []
    for k, genre in enumerate(GENRES):
        other = GENRES[(k + 1) % len(GENRES)]
        for _ in range(users_per_genre):
            u = len(user_features)
            user_features.append(["gender:F" if k == 0 else "gender:M"])
            for film in rng.choice(films[genre], 10, replace=False):
                users.append(u), items.append(film), scores.append(rng.choice([4.0, 4.5, 5.0]))
            for film in rng.choice(films[other], 2, replace=False):
                users.append(u), items.append(film), scores.append(rng.choice([1.0, 1.5, 2.0]))
    n_users = len(user_features)
    return TrainingData(
        user_keys=np.arange(n_users), item_keys=np.arange(n_items), users=np.array(users), items=np.array(items),
        scores=np.array(scores, np.float32), timestamps=np.zeros(len(users)), item_titles=[f"Film {i}" for i in range(n_items)],
        item_genres=item_genres, item_years=np.full(n_items, 1990, np.int32), item_features=item_features,
        item_text=[" ".join(f) for f in item_features], user_features=user_features)


def films_of(genre, *, cold=False):
    start = GENRES.index(genre) * (FILMS_PER_GENRE + 1)
    return np.array([start + FILMS_PER_GENRE]) if cold else np.arange(start, start + FILMS_PER_GENRE)


def train(data, **hp):
    return train_network(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                         data.item_genres, data.user_features, {**FAST, **hp})


def positions(scores, films):
    """Rank (0 = best) of each film in a score vector."""
    order = np.argsort(-scores, kind="stable")
    return np.flatnonzero(np.isin(order, films))


def test_the_numpy_user_tower_computes_what_the_torch_network_computes():
    data = taste_data()
    net, taste = train(data, neural_epochs=3)
    histories = [
        (films_of("Western")[:9], np.array([5, 4.5, 5, 4.5, 5, 4.5, 5, 4.5, 5.0]), ["gender:F"]),
        (np.r_[films_of("Horror")[:4], films_of("Musical")[:2]], np.array([4, 5, 4.5, 3, 1, 1.5]), ["gender:M", "age:unknown"]),
        (np.array([], np.int64), np.array([], np.float32), []),  # a newcomer without ratings
        (np.arange(data.n_items), np.full(data.n_items, 3.5), ()),  # every film, the cold ones too
    ]
    for items, scores, features in histories:
        expected = network_user_vectors(net, taste, items, scores, features)
        got = taste.user_vectors(items, scores, features)
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5)


def test_serving_a_fitted_recommender_never_imports_torch(tmp_path):
    data = taste_data()
    model = fit_recommender(data, {**FAST, "components": 8, "epochs": 3, "stars_iterations": 2, "ease_min_count": 1})
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps(model))
    western, horror = films_of("Western"), films_of("Horror")
    script = f"""
import os, pickle, sys
import numpy as np
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
import django
django.setup()
import recommendations.selectors, recommendations.services, recommendations.feedback
model = pickle.loads(open({str(artifact)!r}, "rb").read())
items, scores = np.array({western[:5].tolist()}), np.array([5.0, 4.5, 5.0, 4.5, 5.0], np.float32)
served = model.blended_scores(model.prior_vector(None, []), items, scores)
stars = model.predicted_stars(None, np.array({horror[:3].tolist()}), items, scores)
assert served.shape == (model.n_items,) and np.isfinite(served).all() and model.neural is not None
assert ((0.5 <= stars) & (stars <= 5)).all()
print("torch" in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))[:3])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=str(engine.__file__).rsplit("/recommendations/", 1)[0])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False []"


def test_fans_get_their_genre_first_and_a_new_rating_moves_them_at_once():
    data = taste_data()
    taste = fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                       data.item_genres, data.user_features, FAST)
    western, horror = films_of("Western"), films_of("Horror")
    items, scores = western[:6], np.full(6, 5.0, np.float32)
    before = taste.ranking_scores(items, scores)
    before[items] = -np.inf
    assert [data.item_genres[i] for i in engine.top_k(before, 5)] == [["Western"]] * 5

    items, scores = np.r_[items, horror[:6]], np.r_[scores, np.full(6, 5.0, np.float32)]
    after = taste.ranking_scores(items, scores)
    after[items] = -np.inf
    assert positions(after, horror[6:]).mean() < positions(before, horror[6:]).mean() - 5


def test_a_film_nobody_rated_gets_a_vector_from_its_metadata():
    data = taste_data()
    taste = fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                       data.item_genres, data.user_features, FAST)
    new_western = films_of("Western", cold=True)
    fan, other = (films_of(g)[:8] for g in ("Western", "Musical"))
    stars = np.full(8, 5.0, np.float32)
    for_fan, for_other = taste.ranking_scores(fan, stars), taste.ranking_scores(other, stars)
    assert positions(for_fan, new_western)[0] < positions(for_other, new_western)[0]
    assert taste.predict_stars(new_western, fan, stars)[0] > taste.predict_stars(new_western, other, stars)[0] + 0.5


def test_likes_and_dislikes_both_move_predicted_stars():
    data = taste_data()
    taste = fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                       data.item_genres, data.user_features, FAST)
    western, horror = films_of("Western"), films_of("Horror")
    items = np.r_[western[:9], horror[:3]]
    scores = np.r_[np.full(9, 5.0), np.full(3, 1.0)].astype(np.float32)
    liked, disliked = taste.predict_stars(western[9:], items, scores), taste.predict_stars(horror[3:], items, scores)
    assert liked.min() > disliked.max()


def test_one_seed_gives_one_model():
    data = taste_data(users_per_genre=4)
    first, second = (fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                                data.item_genres, data.user_features, {**FAST, "neural_epochs": 4}) for _ in range(2))
    np.testing.assert_array_equal(first.item_rank, second.item_rank)
    np.testing.assert_array_equal(first.layers[0][0], second.layers[0][0])


def test_with_sampled_negatives_fans_still_get_their_genre():
    """A catalogue above neural_full_softmax_max trains on a sample of the films at each step."""
    data = taste_data()
    taste = fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                       data.item_genres, data.user_features, {**FAST, "neural_full_softmax_max": 10,
                                                                  "neural_negatives": 16})
    musicals = films_of("Musical")
    scores = taste.ranking_scores(musicals[:6], np.full(6, 5.0, np.float32))
    scores[musicals[:6]] = -np.inf
    assert [data.item_genres[i] for i in engine.top_k(scores, 5)] == [["Musical"]] * 5


def test_a_fit_without_the_neural_model_still_serves():
    """neural_epochs 0 leaves the model out; the blend and the stars fall back to the others."""
    data = taste_data(users_per_genre=4)
    model = fit_recommender(data, {"neural_epochs": 0, "components": 8, "epochs": 2, "stars_iterations": 1,
                                   "ease_min_count": 1, "threads": 1})
    assert model.neural is None
    items, scores = films_of("Western")[:5], np.full(5, 5.0, np.float32)
    assert np.isfinite(model.blended_scores(model.prior_vector(None, []), items, scores)).all()
    assert np.isfinite(model.predicted_stars(None, films_of("Horror")[:3], items, scores)).all()


def test_the_item_tower_of_a_few_films_is_the_whole_towers_rows():
    """The sampled softmax computes the item tower for its candidates only: the same vectors."""
    import torch

    from recommendations.neural import NEURAL_HYPERPARAMETERS, _build_network, _feature_subset, _item_feature_lists

    features = [["genre:Drama", "decade:1990"], [], ["genre:Horror"], ["genre:Drama", "actor:A", "actor:B"], ["tag:x"]]
    ids, offsets, n_features = _item_feature_lists(features)
    torch.manual_seed(0)
    net = _build_network(len(features), n_features, 4, NEURAL_HYPERPARAMETERS)
    keep = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    rows = np.array([0, 1, 3, 4])
    sub_ids, sub_offsets = _feature_subset(ids, offsets, rows)
    whole = net.items(torch.from_numpy(ids), torch.from_numpy(offsets), keep)
    few = net.items_of(torch.from_numpy(rows), torch.from_numpy(sub_ids), torch.from_numpy(sub_offsets), keep)
    for full, part in zip(whole, few):
        assert torch.allclose(full[torch.from_numpy(rows)], part, atol=1e-6)
