"""Redis behind the site, guarded by one circuit breaker per process.

Every use of Redis in a request goes through ``redis_guard()``: the cache backends below (the
default cache: allauth's rate limits, the API throttles, the search index; the recommendation
cache), the recommendation counters and locks, and task publishing. Each Redis call waits at
most REDIS_TIMEOUT (socket timeouts in settings). The first failure opens the breaker: for the
next REDIS_BREAKER_SECONDS every guarded call fails at once without touching Redis, so a hung or
dead Redis costs one request one timeout and then nothing. After that window the next call
tries Redis again; success closes the breaker. One warning per outage, one line when it ends.

- ``GuardedRedisCache`` raises (RedisUnavailable while the breaker is open): for callers that
  notice an outage and compute instead (recommendations.cache).
- ``FailOpenRedisCache`` never raises: it behaves like an empty cache that accepts writes
  (reads miss, writes and locks succeed), so a login or a throttled API call never turns into a
  500 because of Redis.
"""
import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError

logger = logging.getLogger(__name__)

# What a Redis outage raises: redis-py errors, socket errors, kombu's wrapper around them.
REDIS_ERRORS = (RedisError, OSError, BrokerError)


class RedisUnavailable(RedisConnectionError):
    """Raised without touching Redis while the circuit breaker is open."""


class CircuitBreaker:
    """Open for REDIS_BREAKER_SECONDS after a failure; closed again by the next success."""

    def __init__(self):
        self._open_until = 0.0
        self._outage_logged = False

    def allows(self) -> bool:
        return time.monotonic() >= self._open_until

    @property
    def is_open(self) -> bool:
        return not self.allows()

    def trip(self, error: Exception) -> None:
        self._open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
        if not self._outage_logged:
            logger.warning("Redis is unreachable (%s): the site stops waiting on it for %gs at a time "
                           "(sessions and throttles fail open, recommendations are computed in process).",
                           error, settings.REDIS_BREAKER_SECONDS)
            self._outage_logged = True

    def reset(self) -> None:
        self._open_until = 0.0
        if self._outage_logged:
            logger.info("Redis is reachable again.")
            self._outage_logged = False


breaker = CircuitBreaker()


@contextmanager
def redis_guard():
    """Run a block of Redis calls under the breaker: fail fast while open, trip it on failure."""
    if not breaker.allows():
        raise RedisUnavailable("Redis was unreachable moments ago; not waiting on it again yet.")
    try:
        yield
    except REDIS_ERRORS as error:
        breaker.trip(error)
        raise
    breaker.reset()


class GuardedRedisCache(RedisCache):
    """Django's Redis cache under the circuit breaker; raises on outages."""

    def _guarded(self, method: str, *args, **kwargs):
        with redis_guard():
            return getattr(super(), method)(*args, **kwargs)

    def get(self, key, default=None, version=None):
        return self._guarded("get", key, default, version)

    def get_many(self, keys, version=None):
        return self._guarded("get_many", keys, version)

    def has_key(self, key, version=None):
        return self._guarded("has_key", key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("set", key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("add", key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("set_many", data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._guarded("delete", key, version)

    def delete_many(self, keys, version=None):
        return self._guarded("delete_many", keys, version)

    def incr(self, key, delta=1, version=None):
        return self._guarded("incr", key, delta, version)

    def clear(self):
        return self._guarded("clear")


# What FailOpenRedisCache answers when Redis cannot: an empty cache that accepts writes.
# add() answers True: callers that spin until add() succeeds (cache locks) must not spin forever.
_FAIL_OPEN_RESULTS = {"get_many": {}, "has_key": False, "set": None, "add": True, "set_many": [], "touch": False,
                      "delete": False, "delete_many": None, "clear": False}


class FailOpenRedisCache(GuardedRedisCache):
    """The guarded cache that never raises (see the module docstring)."""

    def _guarded(self, method: str, *args, **kwargs):
        try:
            return super()._guarded(method, *args, **kwargs)
        except REDIS_ERRORS:
            if method == "get":
                return args[1]  # the caller's default
            if method == "incr":
                return args[1]  # the delta, as if the key had been 0
            return _FAIL_OPEN_RESULTS[method]
