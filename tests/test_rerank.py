"""The served list's last step: calibrated to the user's genres, moved along the discovery dial."""
import numpy as np

from recommendations import rerank

GENRES = ["Sci-Fi", "Romance", "Comedy", "Horror"]


def catalogue(n=400, seed=0):
    """n films of one genre each, scores favouring Sci-Fi, popularity unrelated to genre."""
    rng = np.random.default_rng(seed)
    item_genres = [[GENRES[i % 4]] for i in range(n)]
    scores = rng.normal(0, 1, n) + np.array([1.0 if g == ["Sci-Fi"] else 0 for g in item_genres])
    popularity = rng.integers(1, 5000, n).astype(float)
    return item_genres, scores, popularity


def serve(item_genres, scores, popularity, target_genres, **kwargs):
    vocabulary = rerank.genre_vocabulary(item_genres)
    liked = [i for i, g in enumerate(item_genres) if g[0] in target_genres][:20]
    target = rerank.user_target(item_genres, vocabulary, np.array(liked, dtype=np.int64))
    return rerank.rerank(scores, 10, item_genres=item_genres, popularity=popularity, target=target,
                         vocabulary=vocabulary, **kwargs), target, vocabulary


def kl_of(top, item_genres, target, vocabulary):
    return float(rerank.calibration_kl(target, rerank.genre_mix(rerank.genre_shares(item_genres, top, vocabulary))))


def test_a_fan_of_two_genres_gets_both_not_just_the_best_scored_one():
    item_genres, scores, popularity = catalogue()
    plain, target, vocabulary = serve(item_genres, scores, popularity, {"Sci-Fi", "Romance"}, strength=0.0)
    calibrated, _, _ = serve(item_genres, scores, popularity, {"Sci-Fi", "Romance"}, strength=0.8)

    genres = lambda films: [item_genres[i][0] for i in films]  # noqa: E731
    assert genres(plain).count("Sci-Fi") >= 7 and genres(plain).count("Romance") <= 1  # scores alone
    assert genres(calibrated).count("Romance") >= 2 and genres(calibrated).count("Sci-Fi") >= 5
    assert kl_of(calibrated, item_genres, target, vocabulary) < 0.5 * kl_of(plain, item_genres, target, vocabulary)


def test_a_calibrated_list_opens_with_the_best_scored_films_whatever_their_genres():
    """A sci-fi and romance fan's two best-scored films are comedies (say their ratings lean that
    way this week): strong calibration alone would pass over both."""
    item_genres, scores, popularity = catalogue()
    scores = scores.copy()
    comedies = [i for i, g in enumerate(item_genres) if g == ["Comedy"]][:2]
    scores[comedies] = scores.max() + np.array([0.8, 0.7])
    served_without_head, _, _ = serve(item_genres, scores, popularity, {"Sci-Fi", "Romance"}, strength=0.95)
    assert not set(comedies) & set(served_without_head.tolist())

    served, _, _ = serve(item_genres, scores, popularity, {"Sci-Fi", "Romance"}, strength=0.95,
                         head=rerank.head_for(n_rated=rerank.FEW_RATINGS))
    assert served[:2].tolist() == comedies
    assert sum(item_genres[i][0] in ("Sci-Fi", "Romance") for i in served[2:]) == 8  # the rest still calibrated


def test_a_new_users_list_is_led_by_the_genres_they_picked_not_by_the_models_prior():
    assert rerank.head_for(n_rated=0) == 0 and rerank.head_for(n_rated=rerank.FEW_RATINGS - 1) == 0


def test_strength_zero_is_the_score_order_and_a_list_reads_best_first_within_a_block():
    item_genres, scores, popularity = catalogue()
    plain, _, _ = serve(item_genres, scores, popularity, {"Romance"}, strength=0.0)
    assert plain.tolist() == np.argsort(-scores)[:10].tolist()

    calibrated, _, _ = serve(item_genres, scores, popularity, {"Romance", "Horror"})
    assert list(scores[calibrated]) == sorted(scores[calibrated], reverse=True)


def test_films_that_are_not_allowed_are_never_served():
    item_genres, scores, popularity = catalogue()
    scores = scores.copy()
    scores[[i for i, g in enumerate(item_genres) if g == ["Romance"]]] = -np.inf  # rated or hidden, say
    served, _, _ = serve(item_genres, scores, popularity, {"Romance"})
    assert len(served) == 10 and np.isfinite(scores[served]).all()


def test_the_discovery_dial_lowers_the_popularity_of_the_list_step_by_step():
    means = []
    for level in sorted(rerank.DISCOVERY_LEVELS):
        per_user = []
        for seed in range(20):  # twenty users of different tastes
            item_genres, scores, popularity = catalogue(seed=seed)
            served, _, _ = serve(item_genres, scores, popularity, {GENRES[seed % 4]}, discovery=level)
            per_user.append(np.log(popularity[served]).mean())
        means.append(np.mean(per_user))
    assert all(a > b for a, b in zip(means, means[1:])), means


def test_hidden_gems_are_films_someone_rated_not_films_nobody_has():
    """A new release nobody has rated yet is the least popular film of all, but nothing says it is
    a gem: the dial leaves it where its score puts it."""
    item_genres, scores, popularity = catalogue()
    popularity = popularity.copy()
    unrated = np.argsort(-scores)[12:40]  # just below the top 10 by score
    popularity[unrated] = 0
    for level in sorted(rerank.DISCOVERY_LEVELS):
        served, _, _ = serve(item_genres, scores, popularity, {"Sci-Fi"}, discovery=level, strength=0.0)
        assert not set(served.tolist()) & set(unrated.tolist()), level


def test_each_dial_step_moves_the_list_by_a_bounded_amount_whatever_the_spread_of_popularity():
    """Popularity by rank among the candidates: a catalogue with a long tail of films rated once or
    twice moves as far per step as one where every film is well known."""
    item_genres, scores, _ = catalogue()
    rng = np.random.default_rng(5)
    for popularity in (rng.integers(1000, 2000, 400).astype(float), np.exp(rng.normal(0, 3, 400)).round() + 1):
        first = serve(item_genres, scores, popularity, {"Sci-Fi"}, discovery=rerank.DEFAULT_DISCOVERY + 1, strength=0.0)[0]
        balanced = serve(item_genres, scores, popularity, {"Sci-Fi"}, strength=0.0)[0]
        assert 2 <= len(set(first.tolist()) - set(balanced.tolist())) <= 8


def test_a_user_with_nothing_liked_and_no_picked_genre_is_only_moved_by_the_dial():
    item_genres, scores, popularity = catalogue()
    vocabulary = rerank.genre_vocabulary(item_genres)
    target = rerank.user_target(item_genres, vocabulary, np.empty(0, np.int64))
    assert target is None
    served = rerank.rerank(scores, 10, item_genres=item_genres, popularity=popularity, target=None, vocabulary=vocabulary)
    assert served.tolist() == np.argsort(-scores)[:10].tolist()


def test_picked_genres_alone_give_a_target():
    item_genres, _, _ = catalogue()
    vocabulary = rerank.genre_vocabulary(item_genres)
    target = rerank.user_target(item_genres, vocabulary, np.empty(0, np.int64), picked_genres=["Romance", "Comedy"])
    assert target[vocabulary["Romance"]] == target[vocabulary["Comedy"]] == 0.5


def test_without_ratings_the_picked_genres_lead_even_over_higher_scored_films():
    item_genres, scores, popularity = catalogue()  # scores favour Sci-Fi
    vocabulary = rerank.genre_vocabulary(item_genres)
    target = rerank.user_target(item_genres, vocabulary, np.empty(0, np.int64), picked_genres=["Romance", "Comedy"])

    served = rerank.rerank(scores, 10, item_genres=item_genres, popularity=popularity, target=target,
                           vocabulary=vocabulary, strength=rerank.strength_for(n_rated=0))

    assert {item_genres[i][0] for i in served} == {"Romance", "Comedy"}
    assert rerank.strength_for(n_rated=0) == 1.0
    assert rerank.strength_for(n_rated=rerank.FEW_RATINGS) == rerank.CALIBRATION_STRENGTH


def test_films_the_user_is_predicted_to_dislike_go_after_the_others_in_the_same_order():
    best = np.array([7, 3, 9, 1, 4])
    stars = np.array([4.1, 2.4, 3.8, 2.2, 2.5])
    order, reordered = rerank.demote_unlikely(best, stars, floor=rerank.pick_min_stars([5.0, 4.5, 1.0]))
    assert order.tolist() == [7, 9, 4, 3, 1]
    assert reordered.tolist() == [4.1, 3.8, 2.5, 2.4, 2.2]


def test_a_harsh_rater_keeps_films_predicted_at_their_own_mean():
    assert rerank.pick_min_stars([1.5, 2.0, 2.5]) == 2.0
    assert rerank.pick_min_stars([]) == rerank.PICK_MIN_STARS
