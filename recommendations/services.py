"""Services that write: fitting a model version, publishing it, storing folded-in users."""
from __future__ import annotations

import logging
import pickle
import re
import traceback

import numpy as np
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from recommendations import engine
from recommendations.dataset import load_training_data
from recommendations.metrics import ranking_metrics
from recommendations.models import ModelVersion, UserVector
from recommendations.recommender import (DEFAULT_HYPERPARAMETERS, Recommender, TrainingData, UserRatings, fit_recommender,
                                         user_sample)

HOLDOUT_SHARE = 0.1
HOLDOUT_MIN_RATINGS = 5
HOLDOUT_MAX_USERS = 3000
HOLDOUT_MAX_TRAIN_RATINGS = 3_000_000
HOLDOUT_CHUNK = 200  # users scored together (matrix products, recommendations.warming)
# Files of one version in RECOMMENDER_ARTIFACT_DIR: model-<id>.pkl, model-<id>_<suffix>.pkl, model-<id>-<part>...
ARTIFACT_FILE = re.compile(r"^model-(\d+)(?=[._-])")

logger = logging.getLogger(__name__)


def fit_model(*, hyperparameters: dict | None = None, progress: bool = True) -> ModelVersion:
    """Fit the recommender on the whole database and save it as a READY (unpublished) version.

    First a quick holdout check (10% of the ratings of users with at least 5, fitted on the
    rest) records nDCG@10 of the model and of popularity in ``metrics``; then the model is
    fitted on everything (``metrics`` also records the neural model's training seconds),
    pickled to RECOMMENDER_ARTIFACT_DIR in the default storage.
    """
    hp = {**DEFAULT_HYPERPARAMETERS, **(hyperparameters or {})}
    version = ModelVersion.objects.create(status=ModelVersion.Status.TRAINING, hyperparameters=hp)
    timer = engine.Timer()
    steps = engine.StepLog()
    try:
        with steps.step("load"):
            data = load_training_data()
        with steps.step("holdout check"):
            metrics = holdout_metrics(data, hp, progress=progress)
        bar = (lambda it: tqdm(it, desc="LightFM epochs", leave=False)) if progress else None
        neural_bar = (lambda it: tqdm(it, desc="neural taste epochs", leave=False)) if progress else None
        recommender = fit_recommender(data, hp, progress=bar, neural_progress=neural_bar, steps=steps)
        recommender.version_id = version.pk
        if recommender.neural is not None:
            metrics["neural_train_seconds"] = round(recommender.neural.train_seconds, 1)
        metrics["ease_items"] = int(len(recommender.ease_items))
        metrics.update(recommender.metrics)  # LightFM's epochs and the ratings it learnt from
        recommender.metrics = metrics
        with steps.step("save artifact"):
            name = _save_artifact(recommender, version.pk)
        metrics["steps"] = steps.entries
    except Exception:
        version.status = ModelVersion.Status.FAILED
        version.error = traceback.format_exc()
        version.train_seconds = timer.seconds
        version.save()
        raise
    version.artifact = name
    version.status = ModelVersion.Status.READY
    version.n_users, version.n_items, version.n_interactions = data.n_users, data.n_items, len(data.scores)
    version.train_seconds = timer.seconds
    version.metrics = metrics
    version.save()
    return version


def _save_artifact(recommender: Recommender, version_id: int) -> str:
    """Pickle the recommender into the default storage (streamed through a temporary file, so
    the artifact is never held in memory twice)."""
    import tempfile

    with tempfile.TemporaryFile() as handle:
        pickle.dump(recommender, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.seek(0)
        return default_storage.save(f"{settings.RECOMMENDER_ARTIFACT_DIR}/model-{version_id}.pkl", File(handle))


def holdout_metrics(data: TrainingData, hp: dict, *, progress=False, k: int = 10) -> dict:
    """nDCG@10 etc. of the served blend, LightFM alone and popularity on a random holdout.

    A guard against publishing a broken fit, not a measurement of quality (``evaluate`` measures
    that): the holdout model is fitted with a third of the epochs (LightFM's and the neural
    model's), which keeps the check to about a third of a refit (fewer epochs make the check,
    if anything, stricter). At scale the check reads a sample of users: up to
    HOLDOUT_MAX_USERS users are scored, and the check model is fitted on the ratings of a
    random share of the users holding about HOLDOUT_MAX_TRAIN_RATINGS ratings (the scored users
    among them), so its cost stops growing with the data; its LightFM learns from the same
    share of those users as the full fit's does (recommender.lightfm_users), so the scored users
    are folded in as often as served users are.
    """
    rng = np.random.default_rng(hp.get("seed", 42))
    counts = np.bincount(data.users, minlength=data.n_users)
    all_ratings = len(data.scores)
    data = data.subset(user_sample(counts, HOLDOUT_MAX_TRAIN_RATINGS, rng)[data.users])
    eligible_users = np.flatnonzero(np.bincount(data.users, minlength=data.n_users) >= HOLDOUT_MIN_RATINGS)
    if len(eligible_users) > HOLDOUT_MAX_USERS:
        eligible_users = np.sort(rng.choice(eligible_users, HOLDOUT_MAX_USERS, replace=False))
    scored = np.zeros(data.n_users, bool)
    scored[eligible_users] = True
    test_mask = scored[data.users] & (rng.random(len(data.users)) < HOLDOUT_SHARE)
    if not test_mask.any():
        return {}
    train = data.subset(~test_mask)
    # LightFM learns from the same share of the users as in the full fit (at scale the scored
    # users are then mostly folded in, as they are served), with a third of its epochs.
    lightfm_share = (hp.get("lightfm_max_ratings") or 0) * len(train.scores) / all_ratings
    model = fit_recommender(train, {**hp, "epochs": max(1, hp["epochs"] // 3),
                                    "lightfm_max_rating_passes": (hp.get("lightfm_max_rating_passes") or 0) // 3,
                                    "lightfm_max_ratings": int(np.ceil(lightfm_share)),
                                    "neural_epochs": -(-hp["neural_epochs"] // 3),
                                    "neural_min_steps": hp["neural_min_steps"] // 3,
                                    "neural_max_steps": -(-hp.get("neural_max_steps", 0) // 3) or None},
                            ranking_only=True)
    relevant = _by_user(data.users[test_mask], data.items[test_mask])
    train_items = _by_user(train.users, train.items)
    train_scores = _by_user(train.users, train.scores)
    served, lightfm_only, popular = {}, {}, {}
    users = list(relevant)
    for start in range(0, len(users), HOLDOUT_CHUNK):
        chunk = users[start:start + HOLDOUT_CHUNK]
        states = [UserRatings(model.user_vectors[u], train_items.get(u, np.empty(0, np.int64)).astype(np.int64),
                               train_scores.get(u, np.empty(0, np.float32)).astype(np.float32)) for u in chunk]
        features = [data.user_features[u] if u < len(data.user_features) else () for u in chunk]
        blend = model.blended_scores_many(states, features)
        lightfm = np.stack([s.vector for s in states]) @ model.fold.item_vectors.T + model.item_bias
        for row, (u, state) in enumerate(zip(chunk, states)):
            for target, scores_all in ((served, blend[row]), (lightfm_only, lightfm[row]),
                                       (popular, model.popularity.astype(np.float64).copy())):
                scores_all = scores_all.astype(np.float64)
                scores_all[state.items] = -np.inf
                target[u] = engine.top_k(scores_all, k).tolist()
    relevant = {u: set(items.tolist()) for u, items in relevant.items()}
    result = {}
    for name, recs in (("served", served), ("lightfm", lightfm_only), ("popularity", popular)):
        m = ranking_metrics(recs, relevant, k, n_items=data.n_items)
        result[f"holdout_{name}_ndcg@{k}"] = round(m[f"ndcg@{k}"], 4)
        result[f"holdout_{name}_precision@{k}"] = round(m[f"precision@{k}"], 4)
    result["holdout_ratings"] = int(test_mask.sum())
    result["holdout_users"] = len(relevant)
    result["holdout_train_ratings"] = int(len(train.scores))
    return result


def _by_user(users: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """{user: their values} from parallel arrays, one sort (no Python object per rating)."""
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]]) if len(users) else np.empty(0, int)
    ends = np.r_[starts[1:], len(users)]
    ordered = values[order]
    return {int(sorted_users[a]): ordered[a:b] for a, b in zip(starts, ends)}


@transaction.atomic
def publish_model(version: ModelVersion) -> ModelVersion:
    """Make this version the one the site serves (the previous current one steps down)."""
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.PUBLISHED) or not version.artifact:
        raise ValueError(f"Model version {version.pk} is {version.status}, only a ready version can be published.")
    ModelVersion.objects.select_for_update().filter(is_current=True).exclude(pk=version.pk).update(
        is_current=False, status=ModelVersion.Status.READY)
    version.is_current = True
    version.status = ModelVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.save(update_fields=["is_current", "status", "published_at"])
    from recommendations.selectors import _current

    _current.expire()
    transaction.on_commit(_current.expire)
    transaction.on_commit(prune_artifacts)
    return version


def prune_artifacts() -> list[int]:
    """Delete the artifact files of versions outside the rollback window; returns their ids.

    Kept: the current version's and those of the RECOMMENDER_ROLLBACK_VERSIONS newest other
    versions that could serve again (ready or published), the versions of a running experiment
    and anything still training. Every
    other version's files go (older fits, rejected and failed ones, files of deleted versions)
    and its ``artifact`` is cleared, so it can no longer be served. Called after each publish.
    """
    Status = ModelVersion.Status
    keep = set(ModelVersion.objects.filter(is_current=True).values_list("pk", flat=True))
    keep |= set(ModelVersion.objects.filter(status__in=[Status.READY, Status.PUBLISHED], is_current=False)
                .order_by("-created_at", "-pk").values_list("pk", flat=True)[:settings.RECOMMENDER_ROLLBACK_VERSIONS])
    keep |= set(ModelVersion.objects.filter(status=Status.TRAINING).values_list("pk", flat=True))
    from recommendations.experiments import protected_version_ids

    keep |= protected_version_ids()  # a running experiment serves them
    doomed = {pk: path for pk, path in ModelVersion.objects.exclude(pk__in=keep).exclude(artifact="")
              .values_list("pk", "artifact")}
    directory = settings.RECOMMENDER_ARTIFACT_DIR
    try:
        _, files = default_storage.listdir(directory)
    except FileNotFoundError:
        files = []
    for name in files:
        match = ARTIFACT_FILE.match(name)
        if match and int(match[1]) not in keep:
            default_storage.delete(f"{directory}/{name}")
    for path in doomed.values():
        default_storage.delete(path)
    ModelVersion.objects.filter(pk__in=list(doomed)).update(artifact="")
    if doomed:
        logger.info("Pruned the artifacts of model versions %s (outside the rollback window)", sorted(doomed))
    return sorted(doomed)


def load_artifact(version: ModelVersion) -> Recommender:
    with default_storage.open(version.artifact, "rb") as handle:
        recommender = pickle.load(handle)
    recommender.version_id = version.pk
    return recommender


def store_user_vector(*, user_id: int, version_id: int, vector: np.ndarray) -> None:
    UserVector.objects.update_or_create(
        user_id=user_id, defaults={"model_version_id": version_id, "vector": np.asarray(vector, np.float32).tobytes()})
