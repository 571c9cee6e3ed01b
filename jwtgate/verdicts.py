"""The verdict cache: verified identities keyed on the token's SHA-256."""

import threading
import time

from cachetools import Cache, TLRUCache

# Values kept once each (see VerdictCache.share); past this many, the table starts again.
_MAX_SHARED_VALUES = 4096


class _Verdicts(TLRUCache):
    """cachetools' TLRUCache, where a missing or expired entry reads as None instead of raising KeyError.

    A miss is one dict lookup: TLRUCache would raise and catch two KeyErrors and raise a third, and
    with many distinct tokens nearly every check is a miss.
    """

    def __getitem__(self, key):
        # Cache.__contains__ is the plain lookup; TLRUCache's own would read the clock as well.
        if not Cache.__contains__(self, key):
            return None
        return TLRUCache.__getitem__(self, key)

    def __missing__(self, key):
        # cachetools' hook for an entry that is missing after all, here one that has expired.
        return None


class VerdictCache:
    """A bounded, thread-safe TLRU cache whose entries die at min(exp, insert time + max_ttl).

    The timer is wall-clock time (not monotonic) because it is compared with the
    token's `exp`, a Unix timestamp.
    """

    def __init__(self, maxsize, max_ttl, timer=time.time):
        self._max_ttl = max_ttl
        self._cache = _Verdicts(maxsize, self._time_to_use, timer=timer) if maxsize and max_ttl else None
        self._lock = threading.Lock()
        self._values = {}

    def _time_to_use(self, _digest, identity, now):
        # A whole second (rounded down, so never later): entries stored in the same second share it.
        return min(identity.exp, self.share(int(now) + self._max_ttl))

    def get(self, digest):
        if self._cache is None:
            return None
        with self._lock:
            # Indexing, not TLRUCache.get(): that checks the key and the clock twice.
            return self._cache[digest]

    def put(self, digest, identity):
        """Keep `identity`, built with share() (jwtgate.claims.check_claims) so it holds no value twice."""
        if self._cache is None:
            return
        with self._lock:
            self._cache[digest] = identity

    def clear(self):
        """Drop every verdict (jwtgate.keys: a key that verified some has left the key set)."""
        if self._cache is None:
            return
        with self._lock:
            self._cache.clear()

    def share(self, value):
        """The one kept copy of a value equal to `value` (stored now if it is new)."""
        # Most tokens carry one of a few role and scope lists, and tokens minted in the same second
        # share iat and exp: one copy of each keeps a full cache's memory down. Cleared when full, so
        # new values are shared too, and bounded.
        values = self._values
        if len(values) >= _MAX_SHARED_VALUES:
            values.clear()
        return values.setdefault(value, value)

    def __len__(self):
        if self._cache is None:
            return 0
        with self._lock:
            self._cache.expire()
            return len(self._cache)
