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
