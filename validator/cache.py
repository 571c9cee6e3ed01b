"""The verdict cache: verified identities keyed on the token's SHA-256."""

import threading
import time

from cachetools import TLRUCache


class VerdictCache:
    """A bounded, thread-safe TLRU cache whose entries die at min(exp, insert time + max_ttl).

    The timer is wall-clock time (not monotonic) because it is compared with the
    token's `exp`, a Unix timestamp.
    """

    def __init__(self, maxsize, max_ttl, timer=time.time):
        self._max_ttl = max_ttl
        self._cache = TLRUCache(maxsize, self._time_to_use, timer=timer) if maxsize and max_ttl else None
        self._lock = threading.Lock()

    def _time_to_use(self, _digest, identity, now):
        return min(identity.exp, now + self._max_ttl)

    def get(self, digest):
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(digest)

    def put(self, digest, identity):
        if self._cache is None:
            return
        with self._lock:
            self._cache[digest] = identity

    def __len__(self):
        if self._cache is None:
            return 0
        with self._lock:
            self._cache.expire()
            return len(self._cache)
