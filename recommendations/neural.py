"""The neural taste model: two towers in the spirit of Covington, Adams & Sargin (2016, "Deep
Neural Networks for YouTube Recommendations"), trained with PyTorch, served with numpy.

User tower (reads only what the user did, so a new rating moves the vector at once):
- the films they rated, as embeddings pooled three ways: the mean of the films they liked
  (weighted as engine.interaction_weights weighs them), the mean of the films they did not
  like, and a signed sum of every film weighted by its stars minus the user's own mean
  (dislikes pull the other way);
- genre affinity: per genre, stars above the user's mean (shrunk) and the share of their
  ratings in it; the user's mean and the number of ratings;
- demographics (gender, age bucket, occupation; genres picked at onboarding) as a multi-hot of
  the user feature names the training data knew; dropped for half of the training examples, so
  the model also works without them;
- an MLP (ReLU) whose last layer gives the ranking vector, the rating vector and a rating bias.

Item tower: the film's id embedding plus the mean of its metadata feature embeddings
(recommender.describe_items names: genres, directors, top-billed actors, keywords, tags,
decade), through an MLP to a ranking vector, a rating vector and two biases. The id is dropped
for a share of the films at every step, and always for films nobody rated, so the metadata
path alone gives films without ratings a usable vector.

Training (``fit_neural``): each step takes a batch of users, keeps a random share of each
user's ratings as the history the user tower reads and predicts the others: a softmax over the
catalogue for which films they rated (sampled negatives when the catalogue is large), each
target weighted like engine.interaction_weights, and a squared error on their stars
(mean + user bias + item bias + rating vectors). Films nobody rated stay out of the softmax.
Seeded, on one thread by default (neural_threads), so a seed gives one model.

Export: item vectors are computed once and stored with the user tower's weights as numpy
arrays in a ``NeuralTaste``; serving never imports torch. Scoring is one matrix product.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations import engine

NEURAL_HYPERPARAMETERS = {
    "neural_dim": 32,  # ranking/rating vector size
    "neural_hidden": 128,  # hidden width of both towers
    "neural_epochs": 40,
    "neural_min_steps": 300,  # small catalogues get more epochs, so the towers train at least this many steps
    # ...and large ones stop here (each step passes the whole item tower: ml-25m's 160k users
    # would be 5,000 steps an epoch); ml-latest-small and ml-100k train fewer than 1,300.
    "neural_max_steps": 4000,
    "neural_batch": 32,  # users per step
    "neural_learning_rate": 3e-3,
    "neural_weight_decay": 1e-5,
    "neural_keep_min": 0.5,  # share of a user's ratings the tower reads in a training example
    "neural_keep_max": 0.95,
    "neural_id_dropout": 0.25,  # share of films whose id embedding is hidden at each step
    "neural_rating_weight": 1.0,  # rating loss relative to the ranking loss
    "neural_full_softmax_max": 20000,  # above this many films, sample negatives
    "neural_negatives": 4096,
    # Small matrices gain little from more threads, and on a busy machine extra threads mostly
    # wait for each other; one thread also makes a seed give one model.
    "neural_threads": 1,
}

MEAN_SHRINK = 2.0  # a user's mean is shrunk towards the global mean by this many pseudo-ratings
GENRE_SHRINK = 2.0


# --------------------------------------------------------------------------- shared numpy inputs


@dataclass
class UserInputs:
    """What the user tower reads for one or more users (numpy; fed to torch or to the numpy tower).

    ``items``/``offsets`` list each user's history; ``pool_weights`` (n_history x 3) the weight of
    every history film in the liked, disliked and signed pools; ``dense`` the genre affinity,
    summary statistics and demographics of each user.
    """

    items: np.ndarray
    offsets: np.ndarray
    pool_weights: np.ndarray
    dense: np.ndarray


def history_weights(scores: np.ndarray, global_mean: float) -> tuple[np.ndarray, float]:
    """(n x 3 pool weights, shrunk user mean) for one user's stars."""
    n = len(scores)
    mean = float((scores.sum() + MEAN_SHRINK * global_mean) / (n + MEAN_SHRINK))
    weights = np.zeros((n, 3), np.float32)
    if n == 0:
        return weights, mean
    raw_mean = float(scores.mean())
    positive = engine.is_positive(scores, raw_mean)
    liked = engine.interaction_weights(scores, raw_mean) * positive
    if liked.sum() > 0:
        weights[:, 0] = liked / liked.sum()
    disliked = ~positive
    if disliked.any():
        weights[:, 1] = disliked / disliked.sum()
    weights[:, 2] = (scores - mean) / np.sqrt(n)
    return weights, mean


def user_dense(items: np.ndarray, scores: np.ndarray, mean: float, global_mean: float, item_genres: np.ndarray,
               demographics: np.ndarray) -> np.ndarray:
    """Genre affinity (shrunk stars above the mean, share), mean, log count, then demographics."""
    n_genres = item_genres.shape[1]
    affinity = np.zeros(n_genres, np.float32)
    share = np.zeros(n_genres, np.float32)
    if len(items):
        rated = item_genres[items]
        counts = rated.sum(axis=0)
        affinity = (scores - mean) @ rated / (counts + GENRE_SHRINK)
        share = counts / len(items)
    stats = np.array([mean - global_mean, np.log1p(len(items)) / 5.0], np.float32)
    return np.concatenate([affinity, share, stats, demographics]).astype(np.float32)


# --------------------------------------------------------------------------- numpy model


def _relu(x):
    return np.maximum(x, 0)


@dataclass
class NeuralTaste:
    """The fitted model as plain arrays: the user tower's weights and every film's vectors."""

    global_mean: float
    history: np.ndarray  # n_items x h, embeddings the user tower pools
    item_genres: np.ndarray  # n_items x n_genres (float32), 1 where the film has the genre
    genre_names: list
    user_vocab: dict  # demographic feature name -> column
    layers: list  # [(W, b), ...] of the user tower (ReLU between; last layer linear)
    item_rank: np.ndarray  # n_items x d
    item_rank_bias: np.ndarray
    item_rate: np.ndarray  # n_items x d
    item_rate_bias: np.ndarray
    train_seconds: float = 0.0

    @property
    def dim(self) -> int:
        return self.item_rank.shape[1]

    def demographics(self, feature_names) -> np.ndarray:
        vector = np.zeros(len(self.user_vocab), np.float32)
        for name in feature_names or ():
            column = self.user_vocab.get(name)
            if column is not None:
                vector[column] = 1.0
        return vector

    def user_vectors(self, items: np.ndarray, scores: np.ndarray, feature_names=()) -> tuple[np.ndarray, np.ndarray, float]:
        """(ranking vector, rating vector, rating bias) of a user from their ratings (milliseconds)."""
        items = np.asarray(items, np.int64)
        scores = np.asarray(scores, np.float32)
        weights, mean = history_weights(scores, self.global_mean)
        pooled = (weights.T @ self.history[items]).ravel() if len(items) else np.zeros(3 * self.history.shape[1], np.float32)
        dense = user_dense(items, scores, mean, self.global_mean, self.item_genres, self.demographics(feature_names))
        x = np.concatenate([pooled, dense]).astype(np.float32)
        for w, b in self.layers[:-1]:
            x = _relu(x @ w + b)
        w, b = self.layers[-1]
        out = x @ w + b
        d = self.dim
        return out[:d], out[d:2 * d], float(out[2 * d]) + mean

    def ranking_scores(self, items: np.ndarray, scores: np.ndarray, feature_names=()) -> np.ndarray:
        """Score of every film for the user (higher: more likely to be what they watch next)."""
        rank, _, _ = self.user_vectors(items, scores, feature_names)
        return self.item_rank @ rank + self.item_rank_bias

    def predict_stars(self, targets: np.ndarray, items: np.ndarray, scores: np.ndarray, feature_names=()) -> np.ndarray:
        """Stars the rating head predicts for ``targets`` (unclipped)."""
        _, rate, bias = self.user_vectors(items, scores, feature_names)
        return self.item_rate[targets] @ rate + self.item_rate_bias[targets] + bias


# --------------------------------------------------------------------------- training (torch)


def genre_matrix(item_genres: list[list[str]]) -> tuple[np.ndarray, list[str]]:
    """(films x genres 0/1 float32 matrix, genre names)."""
    names = sorted({g for gs in item_genres for g in gs})
    index = {g: i for i, g in enumerate(names)}
    matrix = np.zeros((len(item_genres), len(names)), np.float32)
    for i, gs in enumerate(item_genres):
        matrix[i, [index[g] for g in gs]] = 1.0
    return matrix, names


def _item_feature_lists(item_features: list[list[str]]):
    """(flat feature ids, offsets, vocabulary size) for an EmbeddingBag over item metadata."""
    vocab: dict[str, int] = {}
    flat, offsets = [], []
    for names in item_features:
        offsets.append(len(flat))
        flat.extend(vocab.setdefault(n, len(vocab)) for n in dict.fromkeys(names))
    return np.array(flat, np.int64), np.array(offsets, np.int64), max(len(vocab), 1)


def _feature_subset(feature_ids: np.ndarray, feature_offsets: np.ndarray, rows: np.ndarray):
    """(flat feature ids, offsets) of the films ``rows`` only, from _item_feature_lists' arrays."""
    ends = np.r_[feature_offsets[1:], len(feature_ids)]
    lengths = ends[rows] - feature_offsets[rows]
    offsets = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    flat = np.repeat(feature_offsets[rows] - offsets, lengths) + np.arange(lengths.sum())
    return feature_ids[flat], offsets


def _build_network(n_items, n_features, n_dense, hp):
    import torch
    from torch import nn

    d, hidden = hp["neural_dim"], hp["neural_hidden"]

    class TasteNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.history = nn.Embedding(n_items, d)
            self.user_mlp = nn.Sequential(nn.Linear(3 * d + n_dense, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                          nn.ReLU(), nn.Linear(hidden, 2 * d + 1))
            self.item_id = nn.Embedding(n_items, d)
            self.item_features = nn.EmbeddingBag(n_features, d, mode="mean")
            self.item_mlp = nn.Sequential(nn.Linear(2 * d, hidden), nn.ReLU(), nn.Linear(hidden, 2 * d + 2))
            self.item_bias = nn.Embedding(n_items, 2)
            for table in (self.history, self.item_id, self.item_features):
                nn.init.normal_(table.weight, 0, 0.05)
            nn.init.zeros_(self.item_bias.weight)

        def users(self, items, offsets, pool_weights, dense):
            pools = [nn.functional.embedding_bag(items, self.history.weight, offsets, mode="sum",
                                                 per_sample_weights=pool_weights[:, k]) for k in range(3)]
            out = self.user_mlp(torch.cat(pools + [dense], dim=1))
            return out[:, :d], out[:, d:2 * d], out[:, 2 * d]

        def items(self, feature_ids, feature_offsets, id_keep):
            ids = self.item_id.weight * id_keep[:, None]
            meta = self.item_features(feature_ids, feature_offsets)
            out = self.item_mlp(torch.cat([ids, meta], dim=1))
            bias = self.item_bias.weight * id_keep[:, None]
            return out[:, :d], out[:, d:2 * d], out[:, 2 * d] + bias[:, 0], out[:, 2 * d + 1] + bias[:, 1]

        def items_of(self, rows, feature_ids, feature_offsets, id_keep):
            """items() for the films ``rows`` only (the same values as items()[rows], for the sampled
            softmax: a step then costs its candidates, not the whole catalogue)."""
            keep = id_keep[rows][:, None]
            ids = self.item_id(rows) * keep
            meta = self.item_features(feature_ids, feature_offsets)
            out = self.item_mlp(torch.cat([ids, meta], dim=1))
            bias = self.item_bias(rows) * keep
            return out[:, :d], out[:, d:2 * d], out[:, 2 * d] + bias[:, 0], out[:, 2 * d + 1] + bias[:, 1]

    return TasteNet()


def _user_rows(users, items, scores, n_users):
    order = np.argsort(users, kind="stable")
    starts = np.searchsorted(users[order], np.arange(n_users + 1))
    return [(items[order[starts[u]:starts[u + 1]]], scores[order[starts[u]:starts[u + 1]]]) for u in range(n_users)]


def _batch_inputs(rows, global_mean, item_genres, demographics, rng, hp, *, drop_demographics=0.5):
    """Inputs of one training batch: each user's history (a random share of their ratings) and the
    held-out rest as targets."""
    h_items, h_weights, offsets, dense, means = [], [], [], [], []
    t_user, t_items, t_scores, t_weights = [], [], [], []
    position = 0
    for b, (u, (items, scores)) in enumerate(rows):
        n = len(items)
        keep = rng.random(n) < rng.uniform(hp["neural_keep_min"], hp["neural_keep_max"])
        if n >= 2 and keep.all():
            keep[rng.integers(n)] = False
        if n >= 2 and not keep.any():
            keep[rng.integers(n)] = True
        hi, hs = items[keep], scores[keep]
        weights, mean = history_weights(hs, global_mean)
        demo = demographics[u] if rng.random() >= drop_demographics else np.zeros_like(demographics[u])
        offsets.append(position)
        position += len(hi)
        h_items.append(hi), h_weights.append(weights), means.append(mean)
        dense.append(user_dense(hi, hs, mean, global_mean, item_genres, demo))
        target = ~keep
        t_user.append(np.full(target.sum(), b)), t_items.append(items[target]), t_scores.append(scores[target])
        t_weights.append(engine.interaction_weights(scores[target], float(scores.mean())))
    cat = np.concatenate
    return (cat(h_items), np.array(offsets, np.int64), cat(h_weights), np.stack(dense), np.array(means, np.float32),
            cat(t_user), cat(t_items), cat(t_scores), cat(t_weights))


def fit_neural(users, items, scores, n_users, n_items, item_features: list[list[str]], item_genres: list[list[str]],
               user_features: list[list[str]], hp: dict, *, progress=None) -> NeuralTaste:
    """Train the two towers on the ratings and export them as a NeuralTaste (see the module doc)."""
    net, exported = train_network(users, items, scores, n_users, n_items, item_features, item_genres, user_features, hp,
                                  progress=progress)
    return exported


def train_network(users, items, scores, n_users, n_items, item_features, item_genres, user_features, hp, *,
                  progress=None):
    """(the trained torch network, its NeuralTaste export); fit_neural keeps only the export."""
    import torch

    hp = {**NEURAL_HYPERPARAMETERS, **hp}
    timer = engine.Timer()
    torch.manual_seed(hp.get("seed", 42))
    rng = np.random.default_rng(hp.get("seed", 42))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(int(hp["neural_threads"]), 1))
    try:
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        scores = np.asarray(scores, np.float32)
        global_mean = float(scores.mean())
        genres, genre_names = genre_matrix(item_genres)
        vocab: dict[str, int] = {}
        for names in user_features:
            for name in names:
                vocab.setdefault(name, len(vocab))
        demographics = np.zeros((n_users, len(vocab)), np.float32)
        for u, names in enumerate(user_features[:n_users]):
            demographics[u, [vocab[n] for n in names]] = 1.0
        feature_ids, feature_offsets, n_features = _item_feature_lists(item_features)
        popularity = np.bincount(items, minlength=n_items)
        warm = torch.from_numpy((popularity > 0).astype(np.float32))
        # Films nobody rated are never a target: as negatives they would only teach the towers
        # that a film known by its metadata alone is never watched. They stay out of the softmax.
        warm_items = np.flatnonzero(popularity > 0)
        unrated_penalty = torch.where(warm > 0, 0.0, -1e9)
        n_dense = 2 * genres.shape[1] + 2 + len(vocab)
        net = _build_network(n_items, n_features, n_dense, hp)
        optimiser = torch.optim.AdamW(net.parameters(), lr=hp["neural_learning_rate"], weight_decay=hp["neural_weight_decay"])
        rows = _user_rows(users, items, scores, n_users)
        active = [u for u in range(n_users) if len(rows[u][0]) >= 2]
        feature_ids_t, feature_offsets_t = torch.from_numpy(feature_ids), torch.from_numpy(feature_offsets)
        sampled = n_items > hp["neural_full_softmax_max"]
        batch = hp["neural_batch"]
        steps_per_epoch = max(-(-len(active) // batch), 1)
        epochs = range(max(hp["neural_epochs"], -(-hp["neural_min_steps"] // steps_per_epoch)))
        max_steps = hp.get("neural_max_steps") or float("inf")
        steps = 0
        for _ in (progress or (lambda it: it))(epochs):
            if steps >= max_steps:
                break
            net.train()
            order = rng.permutation(active)
            for start in range(0, len(order), batch):
                if steps >= max_steps:
                    break
                steps += 1
                chunk = order[start:start + batch]
                (h_items, offsets, pool_w, dense, means, t_user, t_items, t_scores,
                 t_weights) = _batch_inputs([(u, rows[u]) for u in chunk], global_mean, genres, demographics, rng, hp)
                keep_ids = warm * torch.from_numpy((rng.random(n_items) >= hp["neural_id_dropout"]).astype(np.float32))
                u_rank, u_rate, u_bias = net.users(torch.from_numpy(h_items), torch.from_numpy(offsets),
                                                   torch.from_numpy(pool_w), torch.from_numpy(dense))
                tu, ti = torch.from_numpy(t_user), torch.from_numpy(t_items)
                if sampled:
                    negatives = warm_items[rng.integers(0, len(warm_items), hp["neural_negatives"])]
                    candidates = np.unique(np.concatenate([t_items, negatives]))
                    column = np.full(n_items, -1, np.int64)
                    column[candidates] = np.arange(len(candidates))
                    cand = torch.from_numpy(candidates)
                    sub_ids, sub_offsets = _feature_subset(feature_ids, feature_offsets, candidates)
                    v_rank, v_rate, b_rank, b_rate = net.items_of(cand, torch.from_numpy(sub_ids),
                                                                  torch.from_numpy(sub_offsets), keep_ids)
                    logits = u_rank @ v_rank.T + b_rank
                    t_cols = torch.from_numpy(column[t_items])
                    target_rows = t_cols
                    h_user = np.repeat(np.arange(len(chunk)), np.diff(np.r_[offsets, len(h_items)]))
                    h_cols = column[h_items]
                    seen = h_cols >= 0
                    mask_rows, mask_cols = torch.from_numpy(h_user[seen]), torch.from_numpy(h_cols[seen])
                else:
                    v_rank, v_rate, b_rank, b_rate = net.items(feature_ids_t, feature_offsets_t, keep_ids)
                    logits = u_rank @ v_rank.T + b_rank + unrated_penalty
                    t_cols = target_rows = ti
                    mask_rows = torch.from_numpy(np.repeat(np.arange(len(chunk)), np.diff(np.r_[offsets, len(h_items)])))
                    mask_cols = torch.from_numpy(h_items)
                logits = logits.index_put((mask_rows, mask_cols), torch.tensor(-1e9))
                log_probs = torch.log_softmax(logits, dim=1)
                weights = torch.from_numpy(t_weights)
                rank_loss = -(log_probs[tu, t_cols] * weights).sum() / weights.sum()
                predicted = (torch.from_numpy(means)[tu] + u_bias[tu] + b_rate[target_rows]
                             + (u_rate[tu] * v_rate[target_rows]).sum(dim=1))
                rate_loss = torch.mean((predicted - torch.from_numpy(t_scores)) ** 2)
                loss = rank_loss + hp["neural_rating_weight"] * rate_loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return net, export(net, global_mean, genres, genre_names, vocab, warm.numpy(), feature_ids_t,
                           feature_offsets_t, train_seconds=timer.seconds)
    finally:
        torch.set_num_threads(previous_threads)


def export(net, global_mean, genres, genre_names, vocab, warm, feature_ids, feature_offsets, *, train_seconds=0.0):
    """The trained network as a NeuralTaste of numpy arrays (films nobody rated: metadata only)."""
    import torch

    net.eval()
    with torch.no_grad():
        v_rank, v_rate, b_rank, b_rate = net.items(feature_ids, feature_offsets, torch.from_numpy(warm))
        layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                  for m in net.user_mlp if isinstance(m, torch.nn.Linear)]
    return NeuralTaste(global_mean=global_mean, history=net.history.weight.detach().numpy().copy(), item_genres=genres,
                       genre_names=genre_names, user_vocab=vocab, layers=layers, item_rank=v_rank.numpy().copy(),
                       item_rank_bias=b_rank.numpy().copy(), item_rate=v_rate.numpy().copy(),
                       item_rate_bias=b_rate.numpy().copy(), train_seconds=train_seconds)


def network_user_vectors(net, taste: NeuralTaste, items, scores, feature_names=()):
    """What the torch network computes for one user, (ranking vector, rating vector, rating
    bias): the reference NeuralTaste.user_vectors must reproduce."""
    import torch

    items, scores = np.asarray(items, np.int64), np.asarray(scores, np.float32)
    weights, mean = history_weights(scores, taste.global_mean)
    dense = user_dense(items, scores, mean, taste.global_mean, taste.item_genres, taste.demographics(feature_names))
    net.eval()
    with torch.no_grad():
        rank, rate, bias = net.users(torch.from_numpy(items), torch.zeros(1, dtype=torch.int64), torch.from_numpy(weights),
                                     torch.from_numpy(dense[None, :]))
    return rank[0].numpy(), rate[0].numpy(), float(bias[0]) + mean
