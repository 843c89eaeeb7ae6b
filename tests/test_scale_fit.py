"""How a fit stays bounded at scale and what users left out of a sampled part still get (no
database: arrays in, arrays out; generated tastes from tests/test_neural.py)."""
import numpy as np

from recommendations import engine
from recommendations.recommender import fit_recommender, lightfm_users
from tests.test_neural import taste_data

SCALE = {"neural_epochs": 0, "components": 8, "epochs": 30, "stars_iterations": 2, "ease_min_count": 1,
         "threads": 1, "seed": 7}


def test_users_left_out_of_lightfms_sample_are_folded_in_and_still_get_their_genre_first():
    data = taste_data(users_per_genre=16)
    hp = {**SCALE, "lightfm_max_ratings": len(data.scores) // 2}
    model = fit_recommender(data, hp)

    trained = lightfm_users(data, hp)
    assert 0 < model.metrics["lightfm_users"] == trained.sum() < data.n_users
    assert model.metrics["lightfm_ratings"] <= len(data.scores) // 2 + 12
    names = engine.genre_affinity_features(data.users, data.items, data.scores, data.n_users, data.item_genres)
    for user in np.flatnonzero(~trained):
        mine = data.users == user
        items, scores = data.items[mine], data.scores[mine]
        # The vector the site would fold in for this user from the same ratings.
        prior = model.prior_vector(None, names[user] + data.user_features[user])
        np.testing.assert_allclose(model.user_vectors[user], model.fold_in(prior, items, scores, np.empty(0, np.int64)),
                                   rtol=1e-5, atol=1e-6)
        liked_genre = data.item_genres[items[scores >= 4][0]][0]
        lightfm = model.lightfm_scores(model.user_vectors[user])
        lightfm[items] = -np.inf
        assert [data.item_genres[i] for i in engine.top_k(lightfm, 5)] == [[liked_genre]] * 5


def test_below_the_sample_size_every_user_is_trained():
    data = taste_data(users_per_genre=4)
    model = fit_recommender(data, {**SCALE, "epochs": 2, "lightfm_max_ratings": len(data.scores)})
    assert model.metrics["lightfm_users"] == data.n_users
    assert model.metrics["lightfm_ratings"] == len(data.scores)
