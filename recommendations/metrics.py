"""Offline metrics, defined as Microsoft Recommenders' python_evaluation defines them.

For each user with held-out items (the relevant set R) and a ranked list L (seen items already
removed), with hits at ranks r_1 < r_2 < ... within the top k:
- precision@k = hits / k;  recall@k = hits / |R|
- nDCG@k (binary relevance) = Σ 1/log(1 + r_j)  /  Σ_{i=1..min(|R|, k)} 1/log(1 + i)
- MAP ("map" in recommenders: mean over users of Σ_j (j / r_j) / |R|, hits within top k)
- MAP@k (their map_at_k): the same sum divided by min(|R|, k)
All are averaged over the users that have both a list and held-out items.
"""
from __future__ import annotations

import numpy as np


def user_ranking_metrics(ranked, relevant, k: int) -> dict:
    """Metrics of one ranked list against one set of relevant items."""
    top = list(ranked)[:k]
    hit_ranks = [rank for rank, item in enumerate(top, start=1) if item in relevant]
    n_rel = len(relevant)
    dcg = sum(1.0 / np.log(1 + r) for r in hit_ranks)
    idcg = sum(1.0 / np.log(1 + i) for i in range(1, min(n_rel, k) + 1))
    precision_sum = sum(j / r for j, r in enumerate(hit_ranks, start=1))
    return {
        "precision": len(hit_ranks) / k,
        "recall": len(hit_ranks) / n_rel if n_rel else 0.0,
        "ndcg": dcg / idcg if idcg else 0.0,
        "map": precision_sum / n_rel if n_rel else 0.0,
        "map@k": precision_sum / min(n_rel, k) if n_rel else 0.0,
    }


def ranking_metrics(recommendations: dict, relevant: dict, k: int = 10, n_items: int | None = None) -> dict:
    """Mean metrics over users present in both dicts, plus catalogue coverage of the lists."""
    users = [u for u in relevant if u in recommendations and relevant[u]]
    if not users:
        return {f"ndcg@{k}": 0.0, f"precision@{k}": 0.0, f"recall@{k}": 0.0, "map": 0.0, f"map@{k}": 0.0, "coverage": 0.0, "users": 0}
    per_user = [user_ranking_metrics(recommendations[u], relevant[u], k) for u in users]
    shown = {item for u in users for item in list(recommendations[u])[:k]}
    result = {
        f"ndcg@{k}": float(np.mean([m["ndcg"] for m in per_user])),
        f"precision@{k}": float(np.mean([m["precision"] for m in per_user])),
        f"recall@{k}": float(np.mean([m["recall"] for m in per_user])),
        "map": float(np.mean([m["map"] for m in per_user])),
        f"map@{k}": float(np.mean([m["map@k"] for m in per_user])),
        "users": len(users),
    }
    result["coverage"] = len(shown) / n_items if n_items else 0.0
    return result


def auc(scores_positive, scores_negative) -> float | None:
    """Probability a positive outranks a negative (ties count half); None without both."""
    pos, neg = np.asarray(scores_positive, float), np.asarray(scores_negative, float)
    if len(pos) == 0 or len(neg) == 0:
        return None
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_vals = allv[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    rank_sum = ranks[: len(pos)].sum()
    return float((rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def rmse(truth, predicted) -> float:
    t, p = np.asarray(truth, float), np.asarray(predicted, float)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(truth, predicted) -> float:
    t, p = np.asarray(truth, float), np.asarray(predicted, float)
    return float(np.mean(np.abs(t - p)))


# ----------------------------------------------------------------------------- beyond accuracy


def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """Each film's percentile (0 = least rated, 100 = most rated; ties share their mean rank)."""
    from scipy.stats import rankdata

    if len(popularity) < 2:
        return np.full(len(popularity), 100.0)
    return (rankdata(popularity, method="average") - 1) / (len(popularity) - 1) * 100


def most_rated(popularity: np.ndarray, share: float = 0.01) -> np.ndarray:
    """Boolean mask of the ``share`` most-rated films (at least one)."""
    top = max(1, int(np.ceil(share * len(popularity))))
    mask = np.zeros(len(popularity), bool)
    mask[np.argsort(-popularity, kind="stable")[:top]] = True
    return mask


def intra_list_diversity(items, genre_vectors: np.ndarray) -> float | None:
    """Mean pairwise cosine distance of the films' genre vectors (1 = no genre in common)."""
    vectors = genre_vectors[list(items)]
    if len(vectors) < 2:
        return None
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.where(norms > 0, norms, 1)[:, None]
    similarity = unit @ unit.T
    upper = np.triu_indices(len(vectors), k=1)
    return float(np.mean(1 - similarity[upper]))


def beyond_accuracy(recommendations: dict, liked: dict, *, popularity: np.ndarray, n_users: int, item_genres,
                    k: int = 10) -> dict:
    """What the top-k lists look like, whatever their accuracy (means over users with a list).

    - ``calibration_kl``: Steck's KL(p ‖ q̃) between the genre mix of the user's liked training
      films (``liked``: user -> items) and that of their top k (recommendations.rerank); lower is
      closer to their taste. Users without liked films are left out.
    - ``popularity_percentile``: mean popularity percentile of the top k (100 = most rated film);
      ``top1_share``: share of the top k from the 1% most-rated films.
    - ``intra_list_diversity``: mean pairwise genre cosine distance within the top k.
    - ``novelty``: mean self-information -log2(raters / users) of the top k, in bits.
    ``popularity`` is training ratings per film, ``n_users`` the training users.
    """
    from recommendations.rerank import calibration_kl, genre_mix, genre_shares, genre_vocabulary

    vocabulary = genre_vocabulary(item_genres)
    percentiles = popularity_percentiles(popularity)
    top1 = most_rated(popularity)
    information = -np.log2(np.maximum(popularity, 1) / max(n_users, 1))
    binary = (genre_shares(item_genres, np.arange(len(item_genres)), vocabulary) > 0).astype(np.float64)
    kls, pct, share, ild, novelty = [], [], [], [], []
    for user, items in recommendations.items():
        top = np.asarray(list(items)[:k], dtype=np.int64)
        if len(top) == 0:
            continue
        pct.append(percentiles[top].mean())
        share.append(top1[top].mean())
        novelty.append(information[top].mean())
        diversity = intra_list_diversity(top, binary)
        if diversity is not None:
            ild.append(diversity)
        liked_items = liked.get(user)
        if liked_items is not None and len(liked_items):
            target = genre_mix(genre_shares(item_genres, liked_items, vocabulary))
            mix = genre_mix(genre_shares(item_genres, top, vocabulary))
            if target is not None:
                kls.append(float(calibration_kl(target, mix if mix is not None else np.zeros(len(vocabulary)))))
    mean = lambda values: float(np.mean(values)) if values else None  # noqa: E731
    return {"calibration_kl": mean(kls), "popularity_percentile": mean(pct), "top1_share": mean(share),
            "intra_list_diversity": mean(ild), "novelty": mean(novelty)}
