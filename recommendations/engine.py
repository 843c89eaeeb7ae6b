"""The recommender itself: pure numpy/scipy over arrays, no Django.

How stars become training signal (one rule for the site and the evaluation):
- every rating is an interaction: having rated a film at all says the user chose to watch it,
  which is what a top-N list has to predict;
- its weight grows with the stars relative to the user's own mean:
  ``weight = clip(1 + (score - user_mean) / 2, 0.25, 2)``, so a 5-star film of a harsh rater
  counts about twice as much as an average one and a 1-star film about a quarter;
- a rating is *positive* (an anchor for explanations, a liked film for fold-in and genre
  affinity) when ``score >= 3.5`` or ``score >= user_mean`` with ``score >= 3``;
- "not interested" is a negative signal: never an interaction, pushed down in the fold-in
  and never served.

Models: LightFM (WARP) hybrid with identity + metadata features (serves cold users and cold
movies, supplies item embeddings for explanations and similar movies), EASE (closed form
item-item on which films were rated, gently weighted by stars: a strong partner on warm
items), a metadata taste model (films nobody has rated yet), and the neural taste model
(recommendations.neural: PyTorch two towers whose user tower reads the user's ratings, exported
to numpy). The served score blends per-user standardised LightFM and EASE scores, then the
neural one (weight blend_neural); on films nobody has rated, the LightFM part is itself a mix of
LightFM and the metadata taste model. All blend weights are chosen on validation splits by
``evaluate``.

Predicted stars blend three models, each read from the user's current ratings (a new rating
counts at once, no refit): a biased matrix factorisation fitted by ALS (folded in by one small
least-squares solve), an item-item neighbourhood on baseline residuals (NeighbourStars:
what the user thought of the most similar films they rated, which gives strong per-user
contrast: films like the ones they rated 1 star are predicted low) and the neural model's
rating head; weights (stars_blend) by non-negative least squares on validation.
"""
from __future__ import annotations

import logging
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

POSITIVE_MIN = 3.5


# --------------------------------------------------------------------------- interactions


def user_means(users: np.ndarray, scores: np.ndarray, n_users: int) -> np.ndarray:
    """Mean stars per user index (global mean for users without ratings)."""
    sums = np.bincount(users, weights=scores, minlength=n_users)
    counts = np.bincount(users, minlength=n_users)
    global_mean = float(scores.mean()) if len(scores) else 3.5
    return np.where(counts > 0, sums / np.maximum(counts, 1), global_mean)


def interaction_weights(scores: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Weight of each rating as training signal (see the module docstring)."""
    return np.clip(1.0 + (scores - means) / 2.0, 0.25, 2.0).astype(np.float32)


def ease_weights(scores: np.ndarray, means: np.ndarray) -> np.ndarray:
    """EASE's gentler weighting, ``clip(1 + (score - user_mean) / 8, 0.75, 1.25)``: on MovieLens
    validation splits EASE ranks as well from this as from bare presence (and better than from
    the LightFM weights), while a film the user disliked still counts a little less."""
    return np.clip(1.0 + (scores - means) / 8.0, 0.75, 1.25).astype(np.float32)


def ease_matrix(users, items, scores, n_users, n_items) -> sp.csr_matrix:
    """User x item matrix EASE is fitted on (float32 CSR, ease_weights)."""
    means = user_means(users, scores, n_users)
    return sp.csr_matrix((ease_weights(scores, means[users]), (users, items)), shape=(n_users, n_items), dtype=np.float32)


def is_positive(scores: np.ndarray, means: np.ndarray) -> np.ndarray:
    return (scores >= POSITIVE_MIN) | ((scores >= means) & (scores >= 3.0))


def presence_matrix(users, items, n_users, n_items) -> sp.csr_matrix:
    """User x item matrix with 1 wherever the user rated the film, whatever the stars."""
    return sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))


def interaction_matrix(users, items, scores, n_users, n_items) -> sp.csr_matrix:
    """Weighted user x item matrix (float32 CSR)."""
    means = user_means(users, scores, n_users)
    weights = interaction_weights(scores, means[users])
    return sp.csr_matrix((weights, (users, items)), shape=(n_users, n_items), dtype=np.float32)


# --------------------------------------------------------------------------- features


def feature_matrix(n_rows: int, row_features: list[list[str]], *, identity: bool, identity_weight: float = 1.0,
                   vocabulary: dict[str, int] | None = None):
    """Sparse feature matrix: optional identity block, then named features.

    Each row's named features share a total weight of 1 (so many keywords do not drown the
    identity feature); the identity feature has ``identity_weight``. Returns (matrix, vocab).
    A given vocabulary is reused (unknown names are dropped) so new rows map to trained features.
    """
    if vocabulary is None:
        vocabulary = {}
        for names in row_features:
            for name in names:
                vocabulary.setdefault(name, len(vocabulary))
    offset = n_rows if identity else 0
    rows, cols, vals = [], [], []
    for r, names in enumerate(row_features):
        known = [vocabulary[n] for n in dict.fromkeys(names) if n in vocabulary]
        if identity:
            rows.append(r), cols.append(r), vals.append(identity_weight)
        for c in known:
            rows.append(r), cols.append(offset + c), vals.append(1.0 / len(known))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, offset + len(vocabulary)), dtype=np.float32)
    return matrix, vocabulary


def genre_affinity_features(users, items, scores, n_users, item_genres: list[list[str]], *, min_ratings=1, top=4):
    """Per-user feature names ``likes:<genre>`` for genres the user rates above their mean."""
    means = user_means(users, scores, n_users)
    genre_vocab = sorted({g for gs in item_genres for g in gs})
    if not genre_vocab:
        return [[] for _ in range(n_users)]
    gidx = {g: i for i, g in enumerate(genre_vocab)}
    rows, cols = [], []
    for i, gs in enumerate(item_genres):
        for g in gs:
            rows.append(i), cols.append(gidx[g])
    item_genre = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(item_genres), len(genre_vocab)))
    centred = sp.csr_matrix(((scores - means[users]).astype(np.float32), (users, items)), shape=(n_users, len(item_genres)))
    seen = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, len(item_genres)))
    total = np.asarray((centred @ item_genre).todense())
    count = np.asarray((seen @ item_genre).todense())
    share = count / np.maximum(count.sum(axis=1, keepdims=True), 1)
    # The few genres the user rates most above their own mean (ties: the ones they rate most).
    result = []
    for u in range(n_users):
        eligible = np.flatnonzero((count[u] >= min_ratings) & (total[u] > 0))
        best = eligible[np.lexsort((-share[u][eligible], -total[u][eligible]))][:top]
        result.append([f"likes:{genre_vocab[g]}" for g in best])
    return result


# --------------------------------------------------------------------------- metadata taste


@dataclass
class MetadataTaste:
    """Stars predicted from metadata alone, for films nobody has rated yet.

    Two linear parts over item features (genres, people, keywords, tags, decade):
    ``quality`` is a ridge regression of the warm films' star bias on their features, each
    film's features sharing a total weight of 1 as in LightFM (so a film with fifty keywords
    is not predicted fifty times more extreme); the user's *affinity* to each feature is their
    mean rating above their own average on films with it, shrunk towards 0 for features seen on
    few films. score(user, film) = mean affinity over the film's features + quality(film).
    """

    presence: sp.csr_matrix  # items x features, 1 where the film has the feature
    quality: np.ndarray  # per item, in stars relative to the item average
    shrink: float

    @classmethod
    def fit(cls, item_features: list[list[str]], item_bias: np.ndarray, popularity: np.ndarray, *,
            alpha: float = 1.0, shrink: float = 5.0) -> MetadataTaste:
        features, _ = feature_matrix(len(item_features), item_features, identity=False)  # rows sum to 1
        presence = (features > 0).astype(np.float32).tocsr()
        warm = popularity > 0
        quality = np.zeros(len(item_features), np.float32)
        if presence.shape[1] and warm.sum() > 1:
            from sklearn.linear_model import Ridge

            ridge = Ridge(alpha=alpha).fit(features[warm], item_bias[warm], sample_weight=np.sqrt(popularity[warm]))
            quality = ridge.predict(features).astype(np.float32)
        return cls(presence, quality, shrink)

    def scores(self, items: np.ndarray, centred_stars: np.ndarray) -> np.ndarray:
        """Predicted stars above the user's average for every film, from the user's ratings
        (``items`` with their stars minus the user's mean)."""
        if not self.presence.shape[1]:
            return np.zeros(self.presence.shape[0], np.float32)
        rated = self.presence[items]
        affinity = (rated.T @ centred_stars.astype(np.float32)) / (np.asarray(rated.sum(axis=0)).ravel() + self.shrink)
        counts = np.maximum(np.asarray(self.presence.sum(axis=1)).ravel(), 1)
        return (self.presence @ affinity / counts + self.quality).astype(np.float32)


# --------------------------------------------------------------------------- EASE


def fit_ease(matrix: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, zero diagonal.

    Memory: one dense N x N float32 array, worked on in place (the Gram matrix is built a block
    of columns at a time, the inverse overwrites it, the symmetrising copies a block at a time).
    """
    from scipy.linalg import lapack

    gram = gram_matrix(matrix)
    gram[np.diag_indices_from(gram)] += lam
    # Inverse through the Cholesky factor (float32: half the time of a float64 inv).
    factor, info = lapack.spotrf(gram, lower=True, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite (info={info})")
    del gram
    precision, info = lapack.spotri(factor, lower=True, overwrite_c=True)
    del factor
    symmetrise_lower(precision)
    # Symmetric now, so its transpose (a C-ordered view of the same memory) is the same matrix.
    precision = precision.T
    precision /= -np.diag(precision).copy()
    precision[np.diag_indices_from(precision)] = 0.0
    return precision


GRAM_BLOCK = 2048


# Above this many ratings, users with more than HEAVY_SHARE x N ratings go through dense BLAS.
DENSE_HEAVY_MIN_NNZ = 2_000_000
HEAVY_SHARE = 0.1


def gram_matrix(matrix: sp.csr_matrix, other: sp.csr_matrix | None = None, block: int = GRAM_BLOCK) -> np.ndarray:
    """XᵀX (or XᵀY with ``other``, same rows) as a dense float32 array.

    The sparse product costs Σ_u n_u² (n_u: the user's ratings), so on large data a few heavy
    raters dominate it; their rows are multiplied as dense blocks by BLAS instead (a cost of
    2·N² each, far cheaper per operation), the other rows sparse, a block of columns at a time
    (the sparse product of the whole matrix would hold N² entries with their indices).
    """
    other = matrix if other is None else other
    n, m = matrix.shape[1], other.shape[1]
    gram = np.zeros((n, m), np.float32, order="F")
    heavy = np.zeros(matrix.shape[0], bool)
    if matrix.nnz > DENSE_HEAVY_MIN_NNZ:
        heavy = np.diff(matrix.indptr) > HEAVY_SHARE * max(n, m)
    light_a, light_b = (matrix[~heavy], other[~heavy]) if heavy.any() else (matrix, other)
    transposed = light_a.T.tocsr()
    csc = light_b.tocsc()
    for start in range(0, m, block):
        gram[:, start:start + block] = (transposed @ csc[:, start:start + block]).toarray()
    rows = np.flatnonzero(heavy)
    for start in range(0, len(rows), 512):
        chunk = rows[start:start + 512]
        left = matrix[chunk].toarray()
        right = left if other is matrix else other[chunk].toarray()
        gram += left.T @ right
    return gram


def symmetrise_lower(a: np.ndarray, block: int = GRAM_BLOCK) -> None:
    """Copy the lower triangle of a square array onto its upper triangle, in place."""
    n = a.shape[0]
    for start in range(0, n, block):
        end = min(start + block, n)
        square = a[start:end, start:end]
        square[...] = np.tril(square) + np.tril(square, -1).T
        a[start:end, end:] = a[end:, start:end].T


# --------------------------------------------------------------------------- explicit MF (stars)


@dataclass
class StarsModel:
    """Biased matrix factorisation on stars fitted by alternating least squares."""

    mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    reg: float
    # Ridge of a user folded in from their current ratings (None: ``reg``). Lower than the fit's:
    # a user read from a dozen ratings then moves with their dislikes, and on ml-latest-small
    # validation it is as accurate from 15 ratings up.
    fold_in_reg: float | None = None

    def predict(self, users, items):
        raw = self.mean + self.user_bias[users] + self.item_bias[items] + np.sum(self.user_factors[users] * self.item_factors[items], axis=1)
        return np.clip(raw, 0.5, 5.0)

    def fold_in(self, items: np.ndarray, scores: np.ndarray):
        """(bias, factors) for a user from their ratings, item side fixed. Milliseconds."""
        if len(items) == 0:
            return 0.0, np.zeros(self.item_factors.shape[1], np.float32)
        q = np.hstack([self.item_factors[items], np.ones((len(items), 1), np.float32)])
        target = scores - self.mean - self.item_bias[items]
        reg = self.reg if self.fold_in_reg is None else self.fold_in_reg
        a = q.T @ q + reg * np.eye(q.shape[1])
        solution = np.linalg.solve(a, q.T @ target)
        return float(solution[-1]), solution[:-1].astype(np.float32)


def fit_stars_model(users, items, scores, n_users, n_items, *, factors=16, reg=8.0, iterations=10, seed=0) -> StarsModel:
    """ALS for r ≈ μ + b_u + b_i + p_u·q_i (each side solved in closed form per row)."""
    rng = np.random.default_rng(seed)
    mean = float(scores.mean()) if len(scores) else 3.5
    p = rng.normal(0, 0.01, (n_users, factors)).astype(np.float64)
    q = rng.normal(0, 0.01, (n_items, factors)).astype(np.float64)
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    by_user = sp.csr_matrix((scores.astype(np.float64), (users, items)), shape=(n_users, n_items))
    by_item = by_user.tocsc()
    eye = np.eye(factors + 1)

    def solve_side(mat, own_f, own_b, other_f, other_b, n):
        for r in range(n):
            start, end = mat.indptr[r], mat.indptr[r + 1]
            if start == end:
                own_f[r], own_b[r] = 0.0, 0.0
                continue
            idx, vals = mat.indices[start:end], mat.data[start:end]
            x = np.hstack([other_f[idx], np.ones((len(idx), 1))])
            target = vals - mean - other_b[idx]
            sol = np.linalg.solve(x.T @ x + reg * eye, x.T @ target)
            own_f[r], own_b[r] = sol[:-1], sol[-1]

    by_item_csr = by_item.T.tocsr()  # item rows
    for _ in range(iterations):
        solve_side(by_user, p, bu, q, bi, n_users)
        solve_side(by_item_csr, q, bi, p, bu, n_items)
    return StarsModel(mean, bu.astype(np.float32), bi.astype(np.float32), p.astype(np.float32), q.astype(np.float32), reg)


def fit_baselines(users, items, scores, n_users, n_items, *, reg_user=15.0, reg_item=10.0, iterations=10):
    """(mean, user bias, item bias) of r ≈ μ + b_u + b_i, each side a ridge solve in turn."""
    mean = float(scores.mean()) if len(scores) else 3.5
    user_count = np.bincount(users, minlength=n_users)
    item_count = np.bincount(items, minlength=n_items)
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    for _ in range(iterations):
        bi = np.bincount(items, weights=scores - mean - bu[users], minlength=n_items) / (reg_item + item_count)
        bu = np.bincount(users, weights=scores - mean - bi[items], minlength=n_users) / (reg_user + user_count)
    return mean, bu.astype(np.float32), bi.astype(np.float32)


@dataclass
class NeighbourStars:
    """Item-item neighbourhood on baseline residuals (Koren 2008's KNNBaseline), for stars.

    prediction(u, i) = μ + b_u + b_i + Σ_j s_ij (r_uj − μ − b_u − b_j) / Σ_j s_ij over the ``k``
    films j the user rated that are most similar to i (positive similarity only). s_ij is the
    Pearson correlation of the two films' residuals over the users who rated both, shrunk by
    n_ij / (n_ij + shrink). The user's bias comes from their current ratings (a shrunk mean
    residual), so a new rating counts at once. Similarities are kept for the ``max_items`` most
    rated films (float16, dense): rarer films get the baseline alone.
    """

    mean: float
    item_bias: np.ndarray
    items: np.ndarray  # film indices with a similarity row
    position: np.ndarray  # per film: row in similarity, or -1
    similarity: np.ndarray  # len(items)^2, float16
    reg_user: float
    k: int

    @classmethod
    def fit(cls, users, items, scores, n_users, n_items, *, shrink=100.0, k=40, max_items=4000, min_count=2,
            reg_user=15.0, reg_item=10.0) -> NeighbourStars:
        mean, bu, bi = fit_baselines(users, items, scores, n_users, n_items, reg_user=reg_user, reg_item=reg_item)
        popularity = np.bincount(items, minlength=n_items)
        kept = np.flatnonzero(popularity >= min_count)
        if len(kept) > max_items:
            kept = np.sort(kept[np.argsort(-popularity[kept], kind="stable")[:max_items]])
        position = np.full(n_items, -1, np.int64)
        position[kept] = np.arange(len(kept))
        rows = position[items] >= 0
        u, j = users[rows], position[items[rows]]
        residual = (scores[rows] - mean - bu[u] - bi[items[rows]]).astype(np.float32)
        shape = (n_users, len(kept))
        r = sp.csr_matrix((residual, (u, j)), shape=shape)
        seen = sp.csr_matrix((np.ones(len(u), np.float32), (u, j)), shape=shape)
        squares = sp.csr_matrix((residual ** 2, (u, j)), shape=shape)
        # float32 and in place: five films x films arrays at most (4000 films: 64 MB each).
        similarity = np.ascontiguousarray(gram_matrix(r))  # Σ r_ui r_uj over users who rated both
        energy = np.ascontiguousarray(gram_matrix(squares, seen))  # [i, j]: Σ r_ui² over users who rated both
        energy *= energy.T
        np.sqrt(energy, out=energy)
        np.divide(similarity, energy, out=similarity, where=energy > 0)
        similarity[energy <= 0] = 0.0
        del energy
        support = np.ascontiguousarray(gram_matrix(seen))  # users who rated both
        support -= 1
        np.maximum(support, 0, out=support)
        similarity *= support
        support += shrink
        similarity /= support
        del support
        similarity = similarity.astype(np.float16)
        np.fill_diagonal(similarity, 0)
        return cls(mean, bi, kept, position, similarity, reg_user, k)

    def user_bias(self, items: np.ndarray, scores: np.ndarray) -> float:
        if len(items) == 0:
            return 0.0
        return float(np.sum(scores - self.mean - self.item_bias[items]) / (self.reg_user + len(items)))

    def predict(self, targets: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Unclipped stars for the target films from the user's ratings (items, scores)."""
        bias = self.user_bias(items, scores)
        baseline = self.mean + bias + self.item_bias[targets]
        rows, cols = self.position[targets], self.position[items]
        usable = cols >= 0
        if not usable.any() or not (rows >= 0).any():
            return baseline
        residual = (scores[usable] - self.mean - bias - self.item_bias[items[usable]]).astype(np.float32)
        has_row = rows >= 0
        sim = np.maximum(self.similarity[np.ix_(rows[has_row], cols[usable])].astype(np.float32), 0)
        if sim.shape[1] > self.k:
            nearest = np.argpartition(-sim, self.k - 1, axis=1)[:, : self.k]
            sim = np.take_along_axis(sim, nearest, axis=1)
            residual = residual[nearest]
        else:
            residual = np.broadcast_to(residual, sim.shape)
        total = sim.sum(axis=1)
        offset = np.where(total > 0, (sim * residual).sum(axis=1) / np.where(total > 0, total, 1), 0.0)
        result = baseline.astype(np.float32).copy()
        result[has_row] += offset
        return result


# --------------------------------------------------------------------------- LightFM


def fit_lightfm(matrix: sp.csr_matrix, item_features, user_features, *, components=64, epochs=30,
                learning_rate=0.05, item_alpha=1e-6, user_alpha=1e-6, max_sampled=50, seed=42, threads=2,
                progress=None):
    """LightFM WARP on the weighted interaction matrix; returns the fitted model."""
    from lightfm import LightFM

    model = LightFM(loss="warp", no_components=components, learning_rate=learning_rate, item_alpha=item_alpha,
                    user_alpha=user_alpha, max_sampled=max_sampled, random_state=seed)
    coo = matrix.tocoo()
    binary = sp.coo_matrix((np.ones_like(coo.data), (coo.row, coo.col)), shape=coo.shape)
    for _ in (progress or (lambda it: it))(range(epochs)):
        model.fit_partial(binary, user_features=user_features, item_features=item_features, sample_weight=coo,
                          epochs=1, num_threads=threads)
    return model


def lightfm_representations(model, features):
    """(biases, embeddings) of rows of a feature matrix: the sums LightFM scores with."""
    return model.get_item_representations(features) if features is not None else model.get_item_representations()


# --------------------------------------------------------------------------- scoring helpers


def standardise(scores: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-row z-score (over valid entries) so differently scaled models can be blended."""
    ref = scores if valid is None else scores[..., valid]
    mu = ref.mean(axis=-1, keepdims=True)
    sd = ref.std(axis=-1, keepdims=True)
    return (scores - mu) / np.where(sd > 0, sd, 1.0)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first (argpartition, then sort the k)."""
    k = min(k, scores.shape[-1])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


@dataclass
class FoldIn:
    """Re-estimates a user's LightFM vector from the item side, holding items fixed.

    Weighted ridge regression towards a prior (the user's feature-based vector): liked films
    get a positive target, hidden films a negative one, the whole catalogue a weak target of
    zero (implicit-ALS style, through the precomputed Gram matrix), so it costs one d x d solve.
    """

    item_vectors: np.ndarray  # n_items x d, centred
    item_mean: np.ndarray  # d
    gram: np.ndarray  # d x d of centred vectors, divided by n_items
    target: float
    reg: float = 1.0
    background: float = 1.0

    @classmethod
    def build(cls, item_vectors: np.ndarray, target: float, reg: float = 1.0):
        mean = item_vectors.mean(axis=0)
        centred = item_vectors - mean
        gram = centred.T @ centred / max(len(centred), 1)
        return cls(centred.astype(np.float32), mean.astype(np.float32), gram.astype(np.float64), float(target), reg)

    def solve(self, prior: np.ndarray, items: np.ndarray, weights: np.ndarray, signs: np.ndarray) -> np.ndarray:
        d = self.gram.shape[0]
        if len(items) == 0:
            return prior.astype(np.float32)
        q = self.item_vectors[items].astype(np.float64)
        w = weights.astype(np.float64)
        a = self.background * len(items) * self.gram + (q * w[:, None]).T @ q + self.reg * np.eye(d)
        b = (q * (w * signs * self.target)[:, None]).sum(axis=0) + self.reg * prior
        return np.linalg.solve(a, b).astype(np.float32)


@dataclass
class Timer:
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class StepLog:
    """When each step of a fit ran and how much memory the process had used by its end.

    ``entries``: [name, Unix start, seconds, the process's peak RSS so far in MiB, CPU seconds of
    the process and the children it waited for] per step (the peak is the process's lifetime
    maximum, so it never falls; ``bench refit`` samples the worker's memory itself to give each
    step its own peak). CPU seconds tell a step's cost on a machine other work keeps busy.
    """

    def __init__(self):
        self.entries: list[list] = []

    @contextmanager
    def step(self, name: str, *, alongside: bool = False):
        """Time the block as step ``name``. A step run ``alongside`` the others (in another thread)
        records no CPU seconds of its own: the process's count over its span is theirs too, and
        theirs include its share."""
        started, clock, cpu = time.time(), time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            cpu_seconds = None if alongside else round(_cpu_seconds() - cpu, 2)
            self.entries.append([name, round(started, 3), round(time.perf_counter() - clock, 3), round(peak, 1),
                                 cpu_seconds])
            logger.info("Fit step %s: %.1f s (%s), peak RSS %.0f MiB", name, self.entries[-1][2],
                        "beside the others" if alongside else f"CPU {cpu_seconds:.1f} s", peak)


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def maybe_step(log: StepLog | None, name: str, *, alongside: bool = False):
    """log.step(name), or nothing without a log."""
    if log is None:
        yield
    else:
        with log.step(name, alongside=alongside):
            yield
