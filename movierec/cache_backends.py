"""A Redis cache backend for the site-wide cache that fails open.

Sessions, allauth's rate limits and the API throttles use the default cache. If Redis cannot
be reached they must not turn every login into a 500: this backend then behaves like an empty
cache that accepts writes (reads miss, writes and locks succeed) and logs one warning per
outage. The recommendation cache uses the plain backend so it can notice outages itself.
"""
import logging

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class FailOpenRedisCache(RedisCache):
    _outage_logged = False

    def _failed(self, error, result):
        if not FailOpenRedisCache._outage_logged:
            logger.warning("Redis is unreachable (%s): the site cache is bypassed until it is back.", error)
            FailOpenRedisCache._outage_logged = True
        return result

    def _call(self, method, result, *args, **kwargs):
        try:
            value = getattr(super(), method)(*args, **kwargs)
        except (RedisError, OSError) as error:
            return self._failed(error, result)
        FailOpenRedisCache._outage_logged = False
        return value

    def get(self, key, default=None, version=None):
        return self._call("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", False, key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        # True: callers that spin until add() succeeds (cache locks) must not spin forever.
        return self._call("add", True, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", [], data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, keys, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", delta, key, delta, version)

    def clear(self):
        return self._call("clear", False)
