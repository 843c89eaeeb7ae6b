"""Services that write: fitting a model version, publishing it, storing folded-in users."""
from __future__ import annotations

import io
import logging
import pickle
import re
import traceback

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from recommendations import engine
from recommendations.dataset import load_training_data
from recommendations.metrics import ranking_metrics
from recommendations.models import ModelVersion, UserVector
from recommendations.recommender import DEFAULT_HYPERPARAMETERS, Recommender, TrainingData, fit_recommender

HOLDOUT_SHARE = 0.1
HOLDOUT_MIN_RATINGS = 5
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
    try:
        data = load_training_data()
        metrics = holdout_metrics(data, hp, progress=progress)
        bar = (lambda it: tqdm(it, desc="LightFM epochs", leave=False)) if progress else None
        neural_bar = (lambda it: tqdm(it, desc="neural taste epochs", leave=False)) if progress else None
        recommender = fit_recommender(data, hp, progress=bar, neural_progress=neural_bar)
        recommender.version_id = version.pk
        if recommender.neural is not None:
            metrics["neural_train_seconds"] = round(recommender.neural.train_seconds, 1)
        recommender.metrics = metrics
        buffer = io.BytesIO()
        pickle.dump(recommender, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        name = default_storage.save(f"{settings.RECOMMENDER_ARTIFACT_DIR}/model-{version.pk}.pkl",
                                    ContentFile(buffer.getvalue()))
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


def holdout_metrics(data: TrainingData, hp: dict, *, progress=False, k: int = 10) -> dict:
    """nDCG@10 etc. of the served blend, LightFM alone and popularity on a random holdout.

    A guard against publishing a broken fit, not a measurement of quality (``evaluate`` measures
    that): the holdout model is fitted with a third of the epochs (LightFM's and the neural
    model's), which keeps the check to about a third of a refit (fewer epochs make the check,
    if anything, stricter).
    """
    rng = np.random.default_rng(hp.get("seed", 42))
    counts = np.bincount(data.users, minlength=data.n_users)
    eligible = counts[data.users] >= HOLDOUT_MIN_RATINGS
    test_mask = eligible & (rng.random(len(data.users)) < HOLDOUT_SHARE)
    if not test_mask.any():
        return {}
    train = data.subset(~test_mask)
    model = fit_recommender(train, {**hp, "epochs": max(1, hp["epochs"] // 3), "neural_epochs": -(-hp["neural_epochs"] // 3),
                                    "neural_min_steps": hp["neural_min_steps"] // 3}, ranking_only=True)
    relevant: dict[int, set] = {}
    for u, i in zip(data.users[test_mask].tolist(), data.items[test_mask].tolist()):
        relevant.setdefault(u, set()).add(i)
    rated: dict[int, tuple[list, list]] = {}
    for u, i, s in zip(train.users.tolist(), train.items.tolist(), train.scores.tolist()):
        entry = rated.setdefault(u, ([], []))
        entry[0].append(i), entry[1].append(s)
    served, lightfm_only, popular = {}, {}, {}
    for u in relevant:
        items, scores = (np.array(x) for x in rated.get(u, ([], [])))
        items = items.astype(np.int64)
        vector = model.user_vectors[u]
        features = data.user_features[u] if u < len(data.user_features) else ()
        for target, scores_all in (
            (served, model.blended_scores(vector, items, scores.astype(np.float32), features)),
            (lightfm_only, model.lightfm_scores(vector)),
            (popular, model.popularity.astype(np.float64).copy()),
        ):
            scores_all = scores_all.astype(np.float64)
            scores_all[items] = -np.inf
            target[u] = engine.top_k(scores_all, k).tolist()
    result = {}
    for name, recs in (("served", served), ("lightfm", lightfm_only), ("popularity", popular)):
        m = ranking_metrics(recs, relevant, k, n_items=data.n_items)
        result[f"holdout_{name}_ndcg@{k}"] = round(m[f"ndcg@{k}"], 4)
        result[f"holdout_{name}_precision@{k}"] = round(m[f"precision@{k}"], 4)
    result["holdout_ratings"] = int(test_mask.sum())
    return result


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
