"""Ranking metrics against values worked out by hand (Microsoft Recommenders' definitions)."""
import math

import numpy as np
import pytest

from recommendations.evaluation import _rank_split
from recommendations.metrics import auc, mae, ranking_metrics, rmse, user_ranking_metrics


def test_one_user_list_scores_as_worked_out_by_hand():
    # relevant {a, c, e}; list a b c d; hits at ranks 1 and 3
    m = user_ranking_metrics(["a", "b", "c", "d"], {"a", "c", "e"}, k=4)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log(2) + 1 / math.log(4)
    idcg = 1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    # MAP as recommenders' map(): (1/1 + 2/3) / |R|
    assert m["map"] == pytest.approx((1 + 2 / 3) / 3)
    assert m["map@k"] == pytest.approx((1 + 2 / 3) / 3)


def test_map_at_k_divides_by_k_when_more_items_are_relevant_than_listed():
    m = user_ranking_metrics(["x", "a"], {"a", "b", "c"}, k=2)
    assert m["map"] == pytest.approx((1 / 2) / 3)
    assert m["map@k"] == pytest.approx((1 / 2) / 2)
    assert m["ndcg"] == pytest.approx((1 / math.log(3)) / (1 / math.log(2) + 1 / math.log(3)))


def test_means_are_over_users_with_held_out_items_and_coverage_counts_distinct_items():
    recs = {1: ["a", "b"], 2: ["a", "c"], 3: ["d", "e"]}
    relevant = {1: {"a"}, 2: {"z"}}
    m = ranking_metrics(recs, relevant, k=2, n_items=10)
    assert m["users"] == 2
    assert m["precision@2"] == pytest.approx((0.5 + 0) / 2)
    assert m["ndcg@2"] == pytest.approx((1 + 0) / 2)
    assert m["coverage"] == pytest.approx(3 / 10)  # a, b, c from the evaluated users


def test_auc_counts_pairs_and_ties_half():
    assert auc([3, 1], [2]) == pytest.approx(0.5)
    assert auc([5], [1, 2]) == pytest.approx(1.0)
    assert auc([1], [1]) == pytest.approx(0.5)
    assert auc([], [1]) is None


def test_rmse_and_mae():
    assert rmse([1, 3], [2, 5]) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert mae([1, 3], [2, 5]) == pytest.approx(1.5)


def test_msr_split_rule_matches_python_stratified_split_by_item():
    # np.random.seed(42); rand(8) = .3745 .9507 .7320 .5987 .15602 .15599 .0581 .8662
    # item 1 (rows 0-3) sorted: r0 r3 r2 r1 -> r1 has rank 4/4 > .75 -> test
    # item 2 (rows 4-7) sorted: r6 r5 r4 r7 -> r7 test
    np.random.seed(42)
    random = np.random.rand(8)
    train = _rank_split(np.array([1, 1, 1, 1, 2, 2, 2, 2]), random, 0.75)
    assert np.flatnonzero(~train).tolist() == [1, 7]


# --- beyond accuracy ---------------------------------------------------------------------------

GENRES_OF = [["Sci-Fi"], ["Sci-Fi", "Horror"], ["Romance"], ["Romance", "Comedy"], ["Comedy"], []]


def test_calibration_kl_follows_steck_with_its_smoothing():
    from recommendations.rerank import calibration_kl

    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    alpha = 0.01
    expected = 0.5 * math.log(0.5 / ((1 - alpha) * 1.0 + alpha * 0.5)) + 0.5 * math.log(0.5 / (alpha * 0.5))
    assert calibration_kl(p, q) == pytest.approx(expected)
    assert calibration_kl(p, p) == pytest.approx(0.0)


def test_beyond_accuracy_figures_of_one_list_worked_out_by_hand():
    from recommendations.metrics import beyond_accuracy

    popularity = np.array([50.0, 10, 5, 1, 0, 2])  # film 0 is the most rated: the top 1% (one film of six)
    result = beyond_accuracy({7: [0, 2]}, {7: np.array([1])}, popularity=popularity, n_users=100,
                             item_genres=GENRES_OF, k=10)
    # liked: film 1 = {Sci-Fi: .5, Horror: .5}; list: {Sci-Fi: .5, Romance: .5}
    alpha = 0.01
    kl = 0.5 * math.log(0.5 / ((1 - alpha) * 0.5 + alpha * 0.5)) + 0.5 * math.log(0.5 / (alpha * 0.5))
    assert result["calibration_kl"] == pytest.approx(kl)
    # percentiles over 6 films: 50 -> 100, 5 -> 60 (ranks 0 1 2 3 4 5 for 0 1 2 5 10 50)
    assert result["popularity_percentile"] == pytest.approx((100 + 60) / 2)
    assert result["top1_share"] == pytest.approx(0.5)
    assert result["intra_list_diversity"] == pytest.approx(1.0)  # no genre in common
    assert result["novelty"] == pytest.approx((-math.log2(0.5) - math.log2(0.05)) / 2)


def test_a_list_drawn_from_the_liked_genres_is_better_calibrated_than_one_from_others():
    from recommendations.metrics import beyond_accuracy

    popularity = np.ones(6)
    liked = {1: np.array([2, 3])}  # a romance and a romantic comedy
    close = beyond_accuracy({1: [3, 2, 4]}, liked, popularity=popularity, n_users=10, item_genres=GENRES_OF)
    far = beyond_accuracy({1: [0, 1]}, liked, popularity=popularity, n_users=10, item_genres=GENRES_OF)
    assert close["calibration_kl"] < far["calibration_kl"]
    assert far["intra_list_diversity"] < 1.0
