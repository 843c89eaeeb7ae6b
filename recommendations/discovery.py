"""The service that moves a user's discovery dial (from popular films to hidden gems).

The position is read by recommendations.selectors.discovery_level and applied by
recommendations.rerank. Moving it drops the user's cached list, so the next page computes it at
the new position.
"""
from __future__ import annotations

from django.db import transaction

from recommendations import cache
from recommendations.models import DiscoveryPreference
from recommendations.rerank import DISCOVERY_LEVELS


def set_discovery_level(*, user, level: int) -> int:
    """Remember the user's dial position (a key of DISCOVERY_LEVELS) and drop their cached list."""
    if level not in DISCOVERY_LEVELS:
        raise ValueError(f"The discovery level must be one of {', '.join(map(str, DISCOVERY_LEVELS))}.")
    DiscoveryPreference.objects.update_or_create(user=user, defaults={"level": level})
    transaction.on_commit(lambda: _forget_cached_list(user.pk))
    return level


def _forget_cached_list(user_id: int) -> None:
    try:
        cache.forget_user_lists(user_id)
    except cache.REDIS_ERRORS:
        pass  # the circuit breaker logged it; the list is recomputed once Redis is back and it expires
