"""The fitted recommender (the artifact a ModelVersion points at) and how it is fitted.

Fitted from a TrainingData (arrays; see recommendations.dataset for the ORM side and
recommendations.evaluation for MovieLens files), pickled whole into the default storage.
Serving only does matrix products over the precomputed representations and small numpy
computations from the user's current ratings (fold-in, EASE, the neural user tower, the
neighbourhood); it never imports torch (recommendations.neural trains with it, then exports).
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from recommendations import engine
from recommendations.neural import NEURAL_HYPERPARAMETERS, NeuralTaste, fit_neural

DEFAULT_HYPERPARAMETERS = {
    "components": 64,
    "epochs": 30,
    # At scale LightFM learns from the ratings of a random share of the users holding at most
    # this many ratings; the other users' vectors are folded in from their ratings (FoldIn, as a
    # user who rated since the fit is served). Its epochs are bounded so that epochs x ratings
    # stays under lightfm_max_rating_passes (up to 1M ratings all 30; 10M and 25M: 5 epochs over
    # the 5M sampled): a pass costs more as the catalogue grows (WARP samples negatives), so the
    # fit time stays bounded as the data grows.
    "lightfm_max_ratings": 5_000_000,
    "lightfm_max_rating_passes": 30_000_000,
    "learning_rate": 0.03,
    "item_alpha": 1e-6,
    "user_alpha": 1e-6,
    "max_sampled": 100,
    "ease_lambda": 500.0,
    "ease_min_count": 2,
    "ease_max_items": 3000,
    # At scale EASE covers every film with this many ratings, as far as ease_memory_mib allows:
    # its N x N weights are dense float32 and every web process holds them (400 MiB: 10,240
    # films); ml-latest-small and ml-100k stay at ease_max_items.
    "ease_scale_min_count": 100,
    "ease_memory_mib": 400,
    "blend_lightfm": 0.35,
    "cold_metadata_weight": 0.5,
    "metadata_alpha": 1.0,
    "metadata_shrink": 5.0,
    "identity_weight": 1.0,
    "stars_factors": 16,
    "stars_reg": 8.0,
    "stars_fold_in_reg": 2.0,
    "stars_iterations": 8,
    "neighbour_shrink": 100.0,
    "neighbour_k": 40,
    "neighbour_max_items": 4000,
    # Share of the neural taste model in the served ranking. On validation splits that keep users'
    # histories as long as the test split's, its gain under msr and temporal is within the noise and
    # `evaluate` leaves it out there (evaluation.choose_blend); it is chosen for films nobody has
    # rated (cold-items: 0.2), and the earlier validation splits, where users kept 56% of their
    # history, chose 0.5 under msr. The site serves new films and short histories: 0.2.
    "blend_neural": 0.2,
    # Predicted stars: weights of (biased MF, item neighbourhood, neural rating head), each
    # clipped to 0.5-5 first: the mean of the weights `evaluate` chose on validation in the
    # five folds of ml-latest-small.
    "stars_blend": [0.22, 0.40, 0.37],
    **NEURAL_HYPERPARAMETERS,
    "seed": 42,
    "threads": 2,  # LightFM's; 1 makes a fit repeatable for a given seed
}


@dataclass
class TrainingData:
    """Everything a fit needs, as arrays indexed 0..n-1 (keys map back to ids)."""

    user_keys: np.ndarray
    item_keys: np.ndarray
    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    timestamps: np.ndarray
    item_titles: list[str]
    item_genres: list[list[str]]
    item_years: np.ndarray
    item_features: list[list[str]]  # genre:/director:/actor:/keyword:/tag:/decade: names
    item_text: list[str]
    user_features: list[list[str]] = field(default_factory=list)  # gender:/age:/occupation:
    hidden_users: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    hidden_items: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def n_users(self):
        return len(self.user_keys)

    @property
    def n_items(self):
        return len(self.item_keys)

    def subset(self, mask: np.ndarray) -> "TrainingData":
        """The same catalogue and users with only the ratings selected by mask."""
        return TrainingData(self.user_keys, self.item_keys, self.users[mask], self.items[mask], self.scores[mask],
                            self.timestamps[mask], self.item_titles, self.item_genres, self.item_years,
                            self.item_features, self.item_text, self.user_features, self.hidden_users, self.hidden_items)


TOP_BILLED = 4  # actors billed lower than this are not item features
MIN_TAG_MOVIES = 3  # a keyword or tag on fewer films is text only, not an item feature


def describe_items(genres, directors, actors, keywords, tags, years, synopses) -> tuple[list[list[str]], list[str]]:
    """Item feature names and content text of every film (one rule for the site and the evaluation).

    Each argument is a list with one entry per film: names (directors; actors in billing order;
    keywords; tags), the year (0 or None when unknown) and the synopsis. Features: genres,
    directors, the TOP_BILLED first actors, keywords and tags found on at least MIN_TAG_MOVIES
    films, decade. Text (for TF-IDF): synopsis, every keyword and tag, genres and people.
    """
    keyword_films = Counter(k for ks in keywords for k in set(ks))
    tag_films = Counter(t for ts in tags for t in set(ts))
    features, texts = [], []
    for i, year in enumerate(years):
        film_tags = sorted(set(tags[i]))
        names = [f"genre:{g}" for g in genres[i]] + [f"director:{d}" for d in directors[i]]
        names += [f"actor:{a}" for a in actors[i][:TOP_BILLED]]
        names += [f"keyword:{k}" for k in keywords[i] if keyword_films[k] >= MIN_TAG_MOVIES]
        names += [f"tag:{t}" for t in film_tags if tag_films[t] >= MIN_TAG_MOVIES]
        if year:
            names.append(f"decade:{year // 10 * 10}")
        features.append(list(dict.fromkeys(names)))
        texts.append(" ".join([synopses[i] or "", " ".join(keywords[i]), " ".join(film_tags), " ".join(genres[i]),
                               " ".join(directors[i]), " ".join(actors[i][:TOP_BILLED])]))
    return features, texts


def genre_masks(item_genres):
    masks = {}
    for i, genres in enumerate(item_genres):
        for g in genres:
            masks.setdefault(g, np.zeros(len(item_genres), bool))[i] = True
    return masks


def feature_prior(user_vocab: dict, user_feature_vectors: np.ndarray, feature_names) -> np.ndarray:
    """A LightFM user vector from feature names alone: the mean of the known features' vectors."""
    known = [user_vocab[n] for n in feature_names if n in user_vocab]
    if not known:
        return np.zeros(user_feature_vectors.shape[1], np.float32)
    return user_feature_vectors[known].sum(axis=0) / len(known)


def fold_in_ratings(fold: engine.FoldIn, prior: np.ndarray, items: np.ndarray, scores: np.ndarray,
                    hidden: np.ndarray) -> np.ndarray:
    """A user's LightFM vector re-estimated from their ratings and hidden films, the item side
    fixed (liked films pull it towards them, disliked and hidden ones push it away)."""
    if len(items) == 0 and len(hidden) == 0:
        return prior
    mean = float(scores.mean()) if len(scores) else 3.5
    weights = engine.interaction_weights(scores, mean) if len(scores) else np.empty(0, np.float32)
    signs = np.where(engine.is_positive(scores, mean), 1.0, -0.5) if len(scores) else np.empty(0)
    all_items = np.concatenate([items, hidden]).astype(np.int64)
    all_weights = np.concatenate([weights, np.ones(len(hidden), np.float32)])
    all_signs = np.concatenate([signs, -np.ones(len(hidden))])
    return fold.solve(prior, all_items, all_weights, all_signs)


def user_sample(counts: np.ndarray, max_ratings: int, rng: np.random.Generator) -> np.ndarray:
    """Mask of a random share of the users (``counts``: ratings per user) holding about
    ``max_ratings`` ratings; every user when they hold fewer."""
    chosen = np.ones(len(counts), bool)
    if counts.sum() <= max_ratings:
        return chosen
    order = rng.permutation(len(counts))
    kept = order[: int(np.searchsorted(np.cumsum(counts[order]), max_ratings)) + 1]
    chosen[:] = False
    chosen[kept] = True
    return chosen


class UserRatings(NamedTuple):
    """What the served scores of one user are computed from (selectors.UserState has the same fields)."""

    vector: np.ndarray  # their LightFM vector
    items: np.ndarray  # model indices of the films they rated
    scores: np.ndarray  # their stars, in the same order


@dataclass
class Recommender:
    hyperparameters: dict
    item_keys: np.ndarray
    user_keys: np.ndarray
    item_titles: list
    item_genres: list
    item_years: np.ndarray
    item_people: list  # per item: list of "director:Name"
    popularity: np.ndarray
    # LightFM
    item_bias: np.ndarray
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    user_vocab: dict
    user_feature_vectors: np.ndarray  # vectors of the named (non-identity) user features
    fold: engine.FoldIn
    # EASE
    ease_items: np.ndarray
    ease_position: np.ndarray
    ease_weights: np.ndarray
    blend_lightfm: float
    # stars
    stars: engine.StarsModel
    # content
    tfidf: sp.csr_matrix
    metadata: engine.MetadataTaste | None = None
    neighbours: engine.NeighbourStars | None = None
    neural: NeuralTaste | None = None
    metrics: dict = field(default_factory=dict)
    version_id: int | None = None

    def __post_init__(self):
        self.item_index = {int(k) if not isinstance(k, str) else k: i for i, k in enumerate(self.item_keys.tolist())}
        self.user_index = {k: i for i, k in enumerate(self.user_keys.tolist())}
        self.genre_masks = genre_masks(self.item_genres)
        norms = np.linalg.norm(self.item_vectors, axis=1, keepdims=True)
        self.item_unit = self.item_vectors / np.where(norms > 0, norms, 1)
        # Served scores are products in float64: BLAS rounds a float32 product of one user
        # differently from the same user's row in a batch, and the last bit could reorder
        # near-tied films between a warmed list and the same list computed on a cache miss.
        self.lightfm_items64 = self.fold.item_vectors.astype(np.float64)
        self.neural_items64 = self.neural.item_rank.astype(np.float64) if self.neural is not None else None

    def __getstate__(self):
        state = dict(self.__dict__)
        for derived in ("item_index", "user_index", "genre_masks", "item_unit", "lightfm_items64", "neural_items64"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def n_items(self):
        return len(self.item_keys)

    # ----------------------------------------------------------------- user side

    def prior_vector(self, user_key, feature_names: list[str]) -> np.ndarray:
        """The user's LightFM vector: trained one if known, else the mean of their feature vectors."""
        index = self.user_index.get(user_key)
        if index is not None:
            return self.user_vectors[index]
        return feature_prior(self.user_vocab, self.user_feature_vectors, feature_names)

    def fold_in(self, prior: np.ndarray, items: np.ndarray, scores: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """Re-estimate the user's vector from their current ratings and hidden films."""
        return fold_in_ratings(self.fold, prior, items, scores, hidden)

    def lightfm_scores(self, vector: np.ndarray) -> np.ndarray:
        return self.fold.item_vectors @ vector + self.item_bias

    def ease_scores(self, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """EASE over the films the user rated, gently weighted by stars (engine.ease_weights)."""
        return self.ease_scores_many([UserRatings(None, items, scores)])[0]

    def metadata_scores(self, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Stars above the user's average that metadata predicts (see engine.MetadataTaste)."""
        if self.metadata is None or len(items) == 0:
            return np.zeros(self.n_items, np.float32)
        return self.metadata.scores(items, scores - float(scores.mean()))

    def content_scores(self, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Cosine-like match of each film's TF-IDF to the user's weighted profile of rated films."""
        if len(items) == 0:
            return np.zeros(self.n_items, np.float32)
        mean = float(scores.mean())
        weights = engine.interaction_weights(scores, mean) * np.where(engine.is_positive(scores, mean), 1.0, -0.5)
        profile = self.tfidf[items].T @ weights.astype(np.float32)
        return np.asarray(self.tfidf @ profile).ravel()

    def neural_scores(self, items: np.ndarray, scores: np.ndarray, user_features=()) -> np.ndarray:
        """The neural taste model's ranking score of every film (zeros without the model)."""
        if self.neural is None:
            return np.zeros(self.n_items, np.float32)
        return self.neural.ranking_scores(items, scores, user_features)

    def score_parts(self, vector, items, scores, user_features=()) -> dict:
        """Per-user standardised scores of each part of the served blend (see blended_scores):
        ``lightfm`` always; ``taste`` (metadata, only when some film has no rating), ``ease`` and
        ``neural`` when they have something to say."""
        return self.score_parts_many([UserRatings(vector, items, scores)], [user_features])[0]

    def score_parts_many(self, users: list, user_features: list) -> list[dict]:
        """score_parts of several users (each with ``vector``, ``items`` and ``scores``), the large
        products done for all of them at once, in float64 so that a user's scores do not depend on
        who else is in the batch. The one scoring path of the site, warming and the holdout check."""
        vectors = np.stack([np.asarray(u.vector, np.float64) for u in users])
        parts = {"lightfm": engine.standardise(vectors @ self.lightfm_items64.T + self.item_bias)}
        has_items = [len(u.items) > 0 for u in users]
        if (self.popularity == 0).any() and self.metadata is not None and any(has_items):
            # Standardised over the whole catalogue, so a lone new film is placed against the
            # warm ones by how well its metadata fits this user.
            parts["taste"] = np.stack([engine.standardise(self.metadata_scores(u.items, u.scores)) for u in users])
        if len(self.ease_items) and any(has_items):
            # Films outside EASE's vocabulary (unrated or rare) have no co-occurrence evidence:
            # their raw EASE score of 0 is standardised like the others. On MovieLens splits such
            # films are rarely what users pick next (treating it as neutral cost 0.01 nDCG@10 under msr).
            parts["ease"] = engine.standardise(self.ease_scores_many(users), self.ease_position >= 0)
        if self.neural is not None:
            ranks = np.stack([self.neural.user_vectors(u.items, u.scores, f)[0] for u, f in zip(users, user_features)])
            parts["neural"] = engine.standardise(ranks.astype(np.float64) @ self.neural_items64.T + self.neural.item_rank_bias)
        return [{name: values[row] for name, values in parts.items() if has_items[row] or name not in ("ease", "taste")}
                for row in range(len(users))]

    def ease_scores_many(self, users: list) -> np.ndarray:
        """ease_scores of several users (each with ``items`` and ``scores``): one sparse (users x
        EASE films) by dense product, which sums each user's row in the same order whoever else is
        in the batch."""
        result = np.zeros((len(users), self.n_items), np.float32)
        if not len(self.ease_items):
            return result
        rows, cols, values = [], [], []
        for row, user in enumerate(users):
            if not len(user.items):
                continue
            position = self.ease_position[user.items]
            keep = position >= 0
            if keep.any():
                rows.append(np.full(int(keep.sum()), row)), cols.append(position[keep])
                values.append(engine.ease_weights(user.scores[keep], float(user.scores.mean())))
        if rows:
            weights = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                    shape=(len(users), len(self.ease_items)), dtype=np.float32)
            result[:, self.ease_items] = weights @ self.ease_weights
        return result

    def combine(self, parts: dict, *, blend_lightfm: float, cold_metadata_weight: float, blend_neural: float) -> np.ndarray:
        """The served score from score_parts with the given weights."""
        lfm = parts["lightfm"]
        if "taste" in parts and cold_metadata_weight > 0:
            lfm = np.where(self.popularity == 0, (1 - cold_metadata_weight) * lfm + cold_metadata_weight * parts["taste"], lfm)
        served = lfm
        if "ease" in parts and blend_lightfm < 1:
            served = blend_lightfm * lfm + (1 - blend_lightfm) * parts["ease"]
        if "neural" in parts and blend_neural > 0:
            served = (1 - blend_neural) * served + blend_neural * parts["neural"]
        return served

    def blended_scores(self, vector, items, scores, user_features=()) -> np.ndarray:
        """Served score per catalogue item (higher is better).

        Warm films: per-user z-scores of LightFM and EASE, mixed with weight blend_lightfm.
        Films nobody has rated yet, about which EASE knows nothing: LightFM (which sees their
        features) mixed with the metadata taste model, weight cold_metadata_weight. Then the
        neural taste model's z-score joins with weight blend_neural (its user vector comes from
        the ratings given here, so it is always current). ``user_features``: the user's
        demographic feature names, if known (the neural model also works without them).
        """
        return self.blended_scores_many([UserRatings(vector, items, scores)], [user_features])[0]

    def blended_scores_many(self, users: list, user_features: list) -> np.ndarray:
        """blended_scores of several users (rows of a float64 matrix): see score_parts_many."""
        hp = self.hyperparameters
        combined = np.empty((len(users), self.n_items), np.float64)
        for row, parts in enumerate(self.score_parts_many(users, user_features)):
            combined[row] = self.combine(parts, blend_lightfm=self.blend_lightfm,
                                         cold_metadata_weight=hp.get("cold_metadata_weight", 0),
                                         blend_neural=hp.get("blend_neural", 0))
        return combined

    def stars_parts(self, user_key, items: np.ndarray, rated_items: np.ndarray, rated_scores: np.ndarray,
                    user_features=()) -> np.ndarray:
        """len(items) x 3 predictions of each stars model (see StarsModels.parts)."""
        index = self.user_index.get(user_key)
        trained = None
        if index is not None and len(rated_items) == 0:
            trained = (self.stars.user_bias[index], self.stars.user_factors[index])
        models = StarsModels(self.stars, self.metadata, self.neighbours, self.neural, self.popularity)
        return models.parts(items, rated_items, rated_scores, user_features, trained=trained)

    def predicted_stars(self, user_key, items: np.ndarray, rated_items: np.ndarray, rated_scores: np.ndarray,
                        user_features=()) -> np.ndarray:
        """Stars the user would give each of ``items`` (rated_* are the user's current ratings):
        the stars_blend weighting of stars_parts."""
        weights = np.asarray(self.hyperparameters.get("stars_blend", (1.0, 0.0, 0.0)), np.float64)
        parts = self.stars_parts(user_key, np.asarray(items, np.int64), np.asarray(rated_items, np.int64),
                                 np.asarray(rated_scores, np.float32), user_features)
        return np.clip(parts @ weights, 0.5, 5.0)

    # ----------------------------------------------------------------- item side

    def similar_items(self, item, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n films most like ``item`` (an index, or an array of them: then one row per item).

        Three kinds of likeness, each in [0, 1]: what the films are about (TF-IDF cosine of
        synopsis, keywords, genres, people), who watches them together (EASE's item-item
        weights, made symmetric and scaled to the film's strongest neighbour; EASE regresses
        co-rating on everything else, so films everybody rates are not neighbours of everything),
        and genre overlap (Jaccard), counted in full only for candidates with 20 ratings or more
        (so obscure films do not get in on their genres alone). For a film outside EASE (few
        ratings), LightFM's item-embedding cosine stands in for co-rating, trusted as far as the
        film has ratings behind it. On ml-latest-small with its metadata, 9.9 of the 10 nearest
        films share a genre with the film on average (README, `python -m bench similar`).
        """
        items = np.atleast_1d(np.asarray(item, dtype=np.int64))
        content = np.asarray((self.tfidf[items] @ self.tfidf.T).todense(), dtype=np.float64)
        genres = np.stack([self.genre_masks[g] for g in sorted(self.genre_masks)], axis=1).astype(np.float64) \
            if self.genre_masks else np.zeros((self.n_items, 1))
        overlap = genres[items] @ genres.T
        union = genres[items].sum(axis=1)[:, None] + genres.sum(axis=1)[None, :] - overlap
        jaccard = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        jaccard *= np.minimum(1.0, self.popularity / 20.0)[None, :]
        collab = np.zeros_like(content)
        for row, i in enumerate(items.tolist()):
            position = self.ease_position[i] if len(self.ease_items) else -1
            if position >= 0:
                weights = (self.ease_weights[position] + self.ease_weights[:, position]) / 2
                strongest = weights.max()
                if strongest > 0:
                    collab[row, self.ease_items] = weights / strongest
            else:
                evidence = min(1.0, float(self.popularity[i]) / 20.0)
                collab[row] = evidence * np.clip(self.item_unit @ self.item_unit[i], 0, None)
        score = 0.5 * content + 0.5 * collab + 0.4 * jaccard
        score[np.arange(len(items)), items] = -np.inf
        k = min(n, self.n_items - 1)
        best = np.stack([engine.top_k(row, k) for row in score]) if k > 0 else np.zeros((len(items), 0), np.int64)
        best_scores = np.take_along_axis(score, best, axis=1)
        if np.ndim(item) == 0:
            return best[0], best_scores[0]
        return best, best_scores


STARS_PARTS = ("mf", "neighbours", "neural")


@dataclass
class StarsModels:
    """The models predicted stars come from; predicted_stars weighs their columns by stars_blend."""

    mf: engine.StarsModel
    metadata: engine.MetadataTaste | None
    neighbours: engine.NeighbourStars | None
    neural: NeuralTaste | None
    popularity: np.ndarray

    def parts(self, items, rated_items, rated_scores, user_features=(), *, trained=None) -> np.ndarray:
        """len(items) x 3 stars (clipped to 0.5-5) from the user's current ratings: biased MF
        (folded in; ``trained`` (bias, factors) instead for a known user with no ratings left),
        item neighbourhood, neural rating head. A missing model repeats the MF column. Films
        nobody has rated: the MF column is the user's mean plus what the metadata predicts."""
        items = np.asarray(items, np.int64)
        rated_items, rated_scores = np.asarray(rated_items, np.int64), np.asarray(rated_scores, np.float32)
        mf_model = self.mf
        bias, factors = trained if trained is not None else mf_model.fold_in(rated_items, rated_scores)
        mf = mf_model.mean + bias + mf_model.item_bias[items] + mf_model.item_factors[items] @ factors
        cold = self.popularity[items] == 0
        if cold.any() and len(rated_items) and self.metadata is not None:
            taste = self.metadata.scores(rated_items, rated_scores - float(rated_scores.mean()))[items]
            mf = np.where(cold, float(rated_scores.mean()) + taste, mf)
        neighbours = mf if self.neighbours is None else self.neighbours.predict(items, rated_items, rated_scores)
        neural = mf if self.neural is None else self.neural.predict_stars(items, rated_items, rated_scores, user_features)
        return np.clip(np.stack([mf, neighbours, neural], axis=1), 0.5, 5.0)


def fit_stars_models(data: TrainingData, hp: dict, *, ranking_only=False, neural_progress=None,
                     steps: engine.StepLog | None = None, neural: Future | None = None) -> StarsModels:
    """Fit the stars models (no neural one with neural_epochs 0). ``neural``: the neural model
    being fitted elsewhere (fit_neural_model in a thread), waited for here.

    ranking_only: one ALS iteration and no neighbourhood (the metadata model still needs MF's
    item biases; the rest only serves predicted stars)."""
    popularity = np.bincount(data.items, minlength=data.n_items).astype(np.float32)
    cold = popularity == 0
    with engine.maybe_step(steps, "stars MF (ALS)"):
        mf = engine.fit_stars_model(data.users, data.items, data.scores.astype(np.float64), data.n_users, data.n_items,
                                    factors=hp["stars_factors"], reg=hp["stars_reg"],
                                    iterations=max(hp["stars_iterations"], 1) if not ranking_only else 1, seed=hp["seed"])
        mf.fold_in_reg = hp.get("stars_fold_in_reg")
    with engine.maybe_step(steps, "metadata taste"):
        metadata = engine.MetadataTaste.fit(data.item_features, mf.item_bias, popularity,
                                            alpha=hp["metadata_alpha"], shrink=hp["metadata_shrink"])
    # A film nobody has rated gets the stars its metadata predicts instead of the average.
    mf.item_bias = np.where(cold, metadata.quality, mf.item_bias).astype(np.float32)
    neighbours = None
    if not ranking_only:
        with engine.maybe_step(steps, "neighbour stars"):
            neighbours = engine.NeighbourStars.fit(data.users, data.items, data.scores, data.n_users, data.n_items,
                                                   shrink=hp["neighbour_shrink"], k=hp["neighbour_k"],
                                                   max_items=hp["neighbour_max_items"])
        neighbours.item_bias = np.where(cold, metadata.quality, neighbours.item_bias).astype(np.float32)
    fitted = fit_neural_model(data, hp, neural_progress, steps) if neural is None else neural.result()
    return StarsModels(mf, metadata, neighbours, fitted, popularity)


def fit_neural_model(data: TrainingData, hp: dict, progress=None, steps: engine.StepLog | None = None,
                     alongside: bool = False) -> NeuralTaste | None:
    """The neural taste model (None with neural_epochs 0); ``alongside``: in a thread beside the
    rest of the fit (its step then records no CPU seconds of its own, engine.StepLog)."""
    if hp["neural_epochs"] <= 0:
        return None
    with engine.maybe_step(steps, "neural", alongside=alongside):
        return fit_neural(data.users, data.items, data.scores, data.n_users, data.n_items, data.item_features,
                          data.item_genres, data.user_features, hp, progress=progress)


def fit_recommender(data: TrainingData, hyperparameters: dict | None = None, *, progress=None,
                    neural_progress=None, ranking_only: bool = False, steps: engine.StepLog | None = None) -> Recommender:
    """Fit every component on the data and return the servable recommender.

    ranking_only skips the predicted-stars models and the TF-IDF (for quick holdout checks).
    ``progress``/``neural_progress`` wrap the LightFM/neural epoch loops (tqdm);
    ``neural_epochs`` 0 leaves the neural model out. ``steps`` records each part's time (engine.StepLog).
    """
    hp = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {})}
    if len(data.scores) == 0:
        raise ValueError("There are no ratings to learn from yet.")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neural-fit") as pool:
        # The neural model trains on one core (more threads do not speed it up) while LightFM,
        # EASE and the stars models take the other: they share nothing, and torch and LightFM
        # release the GIL while they compute.
        neural = pool.submit(fit_neural_model, data, hp, neural_progress, steps, True)
        return _fit_recommender(data, hp, progress=progress, ranking_only=ranking_only, steps=steps, neural=neural)


def _fit_recommender(data: TrainingData, hp: dict, *, progress, ranking_only: bool, steps, neural: Future):
    n_users, n_items = data.n_users, data.n_items
    step = lambda name: engine.maybe_step(steps, name)  # noqa: E731
    with step("features"):
        item_features, user_features, user_vocab, user_names = _lightfm_features(data, hp)
        trained = lightfm_users(data, hp)
        kept = trained[data.users]
        matrix = engine.interaction_matrix(data.users[kept], data.items[kept], data.scores[kept], n_users, n_items)
    epochs = lightfm_epochs(hp, matrix.nnz)
    with step("lightfm"):
        lfm = engine.fit_lightfm(matrix, item_features, user_features, components=hp["components"], epochs=epochs,
                                 learning_rate=hp["learning_rate"], item_alpha=hp["item_alpha"],
                                 user_alpha=hp["user_alpha"], max_sampled=hp["max_sampled"], seed=hp["seed"],
                                 threads=hp["threads"], progress=progress)
        serving = _lightfm_serving(lfm, data, item_features, user_features, matrix)
    lightfm_metrics = {"lightfm_epochs": epochs, "lightfm_ratings": int(matrix.nnz), "lightfm_users": int(trained.sum())}
    del matrix
    if not trained.all():
        with step("lightfm fold-in"):
            _fold_in_untrained_users(serving, data, user_vocab, user_names, np.flatnonzero(~trained))
    with step("ease"):
        ease_matrix = engine.ease_matrix(data.users, data.items, data.scores, n_users, n_items)
        ease_items, ease_position, ease_weights = fit_ease_block(ease_matrix, serving["popularity"], hp)
        del ease_matrix

    models = fit_stars_models(data, hp, ranking_only=ranking_only, steps=steps, neural=neural)
    with step("tf-idf"):
        tfidf = content_matrix([""] * n_items if ranking_only else data.item_text)
    people = [[f for f in feats if f.startswith("director:")] for feats in data.item_features]
    return Recommender(
        hyperparameters=hp, item_keys=data.item_keys, user_keys=data.user_keys, item_titles=list(data.item_titles),
        item_genres=list(data.item_genres), item_years=data.item_years, item_people=people,
        popularity=serving["popularity"], item_bias=serving["item_bias"], item_vectors=serving["item_vectors"],
        user_vectors=serving["user_vectors"], user_vocab=user_vocab, user_feature_vectors=serving["user_feature_vectors"],
        fold=serving["fold"], ease_items=ease_items, ease_position=ease_position, ease_weights=ease_weights,
        blend_lightfm=hp["blend_lightfm"], stars=models.mf, tfidf=tfidf, metadata=models.metadata,
        neighbours=models.neighbours, neural=models.neural, metrics=lightfm_metrics,
    )


def _lightfm_features(data: TrainingData, hp: dict):
    """(item features, user features, user vocabulary, each user's feature names) LightFM is fitted with."""
    n_users, n_items = data.n_users, data.n_items
    item_features, _ = engine.feature_matrix(n_items, data.item_features, identity=True,
                                             identity_weight=hp["identity_weight"])
    affinity = engine.genre_affinity_features(data.users, data.items, data.scores, n_users, data.item_genres)
    user_names = [list(a) + (data.user_features[u] if u < len(data.user_features) else []) for u, a in enumerate(affinity)]
    user_features, user_vocab = engine.feature_matrix(n_users, user_names, identity=True)
    return item_features, user_features, user_vocab, user_names


def lightfm_users(data: TrainingData, hp: dict) -> np.ndarray:
    """Mask of the users LightFM trains on: all of them, or at scale a random share holding about
    lightfm_max_ratings ratings (the rest are folded in)."""
    limit = hp.get("lightfm_max_ratings") or 0
    if limit <= 0:
        return np.ones(data.n_users, bool)
    return user_sample(np.bincount(data.users, minlength=data.n_users), limit, np.random.default_rng(hp["seed"]))


def _fold_in_untrained_users(serving: dict, data: TrainingData, user_vocab: dict, user_names: list, users) -> None:
    """The LightFM vectors of users left out of its training, folded in from their ratings and
    hidden films towards the mean of their feature vectors (as the site folds in a user)."""
    shape = (data.n_users, data.n_items)
    rated = sp.csr_matrix((data.scores.astype(np.float32), (data.users, data.items)), shape=shape)
    hidden = sp.csr_matrix((np.ones(len(data.hidden_users), np.float32), (data.hidden_users, data.hidden_items)),
                           shape=shape)
    vectors, fold = serving["user_vectors"], serving["fold"]
    for user in users.tolist():
        start, end = rated.indptr[user], rated.indptr[user + 1]
        prior = feature_prior(user_vocab, serving["user_feature_vectors"], user_names[user])
        vectors[user] = fold_in_ratings(fold, prior, rated.indices[start:end].astype(np.int64), rated.data[start:end],
                                        hidden.indices[hidden.indptr[user]:hidden.indptr[user + 1]].astype(np.int64))


def _lightfm_serving(lfm, data: TrainingData, item_features, user_features, matrix) -> dict:
    """What serving keeps of the fitted LightFM: representations, fold-in, popularity."""
    n_users, n_items = data.n_users, data.n_items
    # Films nobody rated (among the users LightFM learnt from) have an untrained identity
    # embedding (noise): represent them by their metadata alone.
    popularity = np.bincount(data.items, minlength=n_items).astype(np.float32)
    cold = np.bincount(matrix.indices, minlength=n_items) == 0
    identity_part, metadata_part = item_features[:, :n_items], item_features[:, n_items:]
    serving_features = sp.hstack([sp.diags((~cold).astype(np.float32)) @ identity_part, metadata_part]).tocsr()
    item_bias, item_vectors = lfm.get_item_representations(serving_features)
    _, user_vectors = lfm.get_user_representations(user_features)
    user_feature_vectors = lfm.user_embeddings[n_users:].astype(np.float32)

    fold = engine.FoldIn.build(item_vectors, target=1.0)
    fold.target = mean_trained_score(matrix, user_vectors, fold.item_vectors)
    return {"popularity": popularity, "item_bias": item_bias.astype(np.float32),
            "item_vectors": item_vectors.astype(np.float32), "user_vectors": user_vectors.astype(np.float32),
            "user_feature_vectors": user_feature_vectors, "fold": fold}


def lightfm_epochs(hp: dict, n_ratings: int) -> int:
    """LightFM's epochs for this many ratings: hp["epochs"], bounded by lightfm_max_rating_passes."""
    budget = hp.get("lightfm_max_rating_passes") or 0
    if budget <= 0 or n_ratings == 0:
        return hp["epochs"]
    return max(1, min(hp["epochs"], budget // n_ratings))


def mean_trained_score(matrix: sp.csr_matrix, user_vectors: np.ndarray, item_vectors: np.ndarray,
                       chunk: int = 1_000_000) -> float:
    """Mean of user·item over the training interactions, a million at a time (no ratings x
    factors array)."""
    coo = matrix.tocoo()
    if coo.nnz == 0:
        return 1.0
    if coo.nnz <= chunk:
        return float(np.mean(np.sum(user_vectors[coo.row] * item_vectors[coo.col], axis=1)))
    total = 0.0
    for start in range(0, coo.nnz, chunk):
        rows, cols = coo.row[start:start + chunk], coo.col[start:start + chunk]
        total += float(np.einsum("ij,ij->", user_vectors[rows], item_vectors[cols], dtype=np.float64))
    return total / coo.nnz


def ease_item_count(popularity: np.ndarray, hp: dict) -> int:
    """How many of the most-rated films EASE covers: ease_max_items, or at scale every film with
    ease_scale_min_count ratings, within ease_memory_mib (four bytes per N² entry: the fit works
    in place on one such array, and serving holds it)."""
    eligible = int((popularity >= hp["ease_min_count"]).sum())
    wanted = max(hp["ease_max_items"], int((popularity >= hp.get("ease_scale_min_count", np.inf)).sum()))
    budget = int(np.sqrt(hp.get("ease_memory_mib", 0) * 2 ** 20 / 4)) if hp.get("ease_memory_mib") else wanted
    return min(eligible, wanted, max(budget, hp["ease_max_items"]))


def fit_ease_block(matrix: sp.csr_matrix, popularity: np.ndarray, hp: dict):
    """EASE over the items with enough interactions (capped by ease_item_count, most popular first).

    ``matrix`` is engine.ease_matrix (ratings gently weighted by stars).
    """
    candidates = np.flatnonzero(popularity >= hp["ease_min_count"])
    limit = ease_item_count(popularity, hp)
    if len(candidates) > limit:
        candidates = candidates[np.argsort(-popularity[candidates], kind="stable")[:limit]]
    candidates = np.sort(candidates)
    position = np.full(matrix.shape[1], -1, np.int64)
    position[candidates] = np.arange(len(candidates))
    if len(candidates) == 0:
        return candidates, position, np.zeros((0, 0), np.float32)
    return candidates, position, engine.fit_ease(matrix[:, candidates], hp["ease_lambda"])


def content_matrix(texts: list[str]) -> sp.csr_matrix:
    """Row-normalised TF-IDF of synopsis, keywords, genres and people (cosine = dot product)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(t.strip() for t in texts):
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)
    vectorizer = TfidfVectorizer(min_df=1, max_features=50000, sublinear_tf=True, stop_words="english", dtype=np.float32)
    return vectorizer.fit_transform(texts).tocsr()
