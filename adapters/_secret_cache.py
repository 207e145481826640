"""The TTL cache every SecretStore adapter shares, written once.

Each secrets backend used to carry its own copy of the same cache. Here the base class owns it
(the pattern of Powertools' ``BaseProvider``): a store implements only ``_cache_key`` (check a
requested name, give the key it is cached under) and ``_fetch`` (read one value from the
backend, or raise ``NotFound``).

Semantics, the same for every store:

- A value read when ``clock()`` said ``t`` (the time taken *before* the read) is served from
  the cache while ``clock() - t < ttl_s``, so a rotated value is seen within one TTL;
  ``ttl_s=0`` reads the backend on every call.
- Misses are never cached: a ``NotFound`` from ``_fetch`` also drops any stale entry of that
  name, so a secret created later is seen on the next call. Other errors leave the cache as it
  is.
- ``clear()`` forgets every value (e.g. after a known rotation).
- Values never reach logs, messages or reprs; a store's repr shows only how many it holds.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from agentfn.errors import ConfigError, NotFound

__all__ = ["CachedSecretStore"]


def _check_ttl(ttl_s: object) -> float:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not ttl_s >= 0:
        raise ConfigError("ttl_s must be >= 0", field="ttl_s")
    return float(ttl_s)


class CachedSecretStore(ABC):
    """A SecretStore whose ``get`` caches values for ``ttl_s`` seconds of ``clock``."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = _check_ttl(ttl_s)
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        key = self._cache_key(name)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[1] < self.ttl_s:
                return hit[0]
        try:
            value = self._fetch(name)
        except NotFound:
            with self._lock:
                self._cache.pop(key, None)
            raise
        with self._lock:
            self._cache[key] = (value, now)
        return value

    def clear(self) -> None:
        """Forget cached values, e.g. after a known rotation."""
        with self._lock:
            self._cache.clear()

    @abstractmethod
    def _cache_key(self, name: str) -> str:
        """Check ``name`` (``UserError(field="name")`` if the backend cannot hold it) and
        return the key its value is cached under."""

    @abstractmethod
    def _fetch(self, name: str) -> str:
        """Read ``name`` from the backend; raise ``NotFound`` if it has no such secret."""
