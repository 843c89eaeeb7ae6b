"""A/B experiments between two published model versions or two discovery dial positions.

A user's arm is a hash of the experiment id and the user id: deterministic, sticky for the whole
experiment, and nothing to store. While an experiment runs, everything personal the site serves
a signed-in user (top picks, genre rows, predicted stars, similar films) comes from their arm's
model version, and their cached list lives under a key of that arm (recommendations.cache), so
the arms' lists never mix. Statistics are in recommendations.impression_stats.
"""
from __future__ import annotations

import contextvars
import hashlib
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from recommendations.models import DiscoveryPreference, Experiment, ModelVersion
from recommendations.rerank import DISCOVERY_LEVELS

CHECK_SECONDS = 5.0
ARMS = ("A", "B")


@dataclass(frozen=True)
class Serving:
    """What the user's arm serves: a model version (None: the served one) and a dial position
    for users who never moved it (None: as usual)."""
    experiment_id: int
    arm: str
    version_id: int | None
    discovery: int | None

    @property
    def cache_suffix(self) -> str:
        return f"x{self.experiment_id}{self.arm}"


class _Running:
    """The running experiment, re-read from the database at most every CHECK_SECONDS per process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.experiment = None
        self.checked_at = -CHECK_SECONDS

    def get(self) -> Experiment | None:
        if time.monotonic() - self.checked_at >= CHECK_SECONDS:
            with self.lock:
                self.experiment = Experiment.objects.filter(status=Experiment.Status.RUNNING).first()
                self.checked_at = time.monotonic()
        return self.experiment

    def expire(self) -> None:
        self.checked_at = -CHECK_SECONDS


_running = _Running()
_outside = contextvars.ContextVar("outside_experiments", default=False)


def running_experiment() -> Experiment | None:
    """The experiment running now (None when there is none)."""
    return _running.get()


def expire_running_experiment() -> None:
    """Make the next running_experiment() call read the database."""
    _running.expire()


@contextmanager
def outside_experiments():
    """Serve everyone the published version inside this block (warming the published lists)."""
    token = _outside.set(True)
    try:
        yield
    finally:
        _outside.reset(token)


def arm_of(experiment_id: int, user_id: int, b_share: float) -> str:
    """"A" or "B": the first 8 bytes of sha256("<experiment>:<user>") as a number in [0, 1),
    B below b_share. The same user always gets the same arm of an experiment."""
    digest = hashlib.sha256(f"{experiment_id}:{user_id}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "big") / 2 ** 64 < b_share else "A"


def serving_for(user) -> Serving | None:
    """The user's arm of the running experiment, or None (no experiment, anonymous, or inside
    outside_experiments())."""
    if _outside.get() or user is None or not getattr(user, "is_authenticated", False):
        return None
    experiment = running_experiment()
    if experiment is None:
        return None
    arm = arm_of(experiment.pk, user.pk, experiment.b_share)
    version_id = experiment.a_version_id if arm == "A" else experiment.b_version_id
    discovery = experiment.a_discovery if arm == "A" else experiment.b_discovery
    return Serving(experiment.pk, arm, version_id, discovery)


def discovery_override(user) -> int | None:
    """The dial position the user's arm serves, when the user never moved the dial themselves."""
    serving = serving_for(user)
    if serving is None or serving.discovery is None:
        return None
    if DiscoveryPreference.objects.filter(user_id=user.pk).exists():
        return None
    return serving.discovery


def _servable(version: ModelVersion | None) -> None:
    if version is not None and (version.status not in (ModelVersion.Status.READY, ModelVersion.Status.PUBLISHED)
                                or not version.artifact):
        raise ValueError(f"v{version.pk} cannot serve ({version.get_status_display()}"
                         f"{', artifact pruned' if not version.artifact else ''}).")


@transaction.atomic
def start_experiment(*, name: str, a_version=None, b_version=None, a_discovery=None, b_discovery=None,
                     b_share: float = 0.5, started_by=None) -> Experiment:
    """Start an experiment; the arms must differ, versions must be servable, only one may run."""
    if Experiment.objects.select_for_update().filter(status=Experiment.Status.RUNNING).exists():
        raise ValueError("An experiment is running already: end it first.")
    if not 0 < b_share < 1:
        raise ValueError("The share of arm B must be between 0 and 1.")
    for level in (a_discovery, b_discovery):
        if level is not None and level not in DISCOVERY_LEVELS:
            raise ValueError("A discovery position is 0 to 4.")
    _servable(a_version)
    _servable(b_version)
    if (getattr(a_version, "pk", None), a_discovery) == (getattr(b_version, "pk", None), b_discovery):
        raise ValueError("The two arms serve the same thing.")
    experiment = Experiment.objects.create(name=name, a_version=a_version, b_version=b_version,
                                           a_discovery=a_discovery, b_discovery=b_discovery, b_share=b_share,
                                           started_by=started_by)
    transaction.on_commit(expire_running_experiment)
    return experiment


@transaction.atomic
def end_experiment(experiment: Experiment, *, keep: str | None) -> str:
    """End the experiment. ``keep``: "A" or "B" promotes that arm's version (published and warmed
    by a task) unless it is the one served already; None keeps the current version. Returns what
    was done (also stored as the experiment's result)."""
    from recommendations import tasks

    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Experiment.Status.RUNNING:
        raise ValueError("This experiment has ended already.")
    if keep not in (None, *ARMS):
        raise ValueError("Keep arm A, arm B or the current version.")
    result = "Kept the current version."
    if keep is not None:
        version = experiment.a_version if keep == "A" else experiment.b_version
        discovery = experiment.a_discovery if keep == "A" else experiment.b_discovery
        if version is not None and not version.is_current:
            _servable(version)
            tasks.request_rollback(version)
            result = f"Promoted arm {keep}: v{version.pk} serves as soon as its lists are warm."
        else:
            result = f"Arm {keep} won; it serves the current version already."
        if discovery is not None:
            result += f" Its dial position ({DISCOVERY_LEVELS[discovery]}) is not made the default by this."
    experiment.status = Experiment.Status.ENDED
    experiment.ended_at = timezone.now()
    experiment.result = result
    experiment.save(update_fields=["status", "ended_at", "result"])
    transaction.on_commit(expire_running_experiment)
    return result


def protected_version_ids() -> set[int]:
    """Versions a running experiment serves: their artifacts must not be pruned."""
    ids = Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("a_version_id", "b_version_id")
    return {pk for pair in ids for pk in pair if pk is not None}
