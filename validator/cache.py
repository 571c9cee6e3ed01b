"""The verdict cache: verified identities keyed on the token's SHA-256."""

import dataclasses
import threading
import time

from cachetools import TLRUCache

# Distinct role and scope lists kept once each; past this many, verdicts keep their own.
_MAX_SHARED_NAMES = 1024


class VerdictCache:
    """A bounded, thread-safe TLRU cache whose entries die at min(exp, insert time + max_ttl).

    The timer is wall-clock time (not monotonic) because it is compared with the
    token's `exp`, a Unix timestamp.
    """

    def __init__(self, maxsize, max_ttl, timer=time.time):
        self._max_ttl = max_ttl
        self._cache = TLRUCache(maxsize, self._time_to_use, timer=timer) if maxsize and max_ttl else None
        self._lock = threading.Lock()
        self._names = {}

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
        identity = dataclasses.replace(identity, roles=self._shared(identity.roles),
                                       scopes=self._shared(identity.scopes))
        with self._lock:
            self._cache[digest] = identity

    def _shared(self, names):
        # Most tokens carry one of a few role and scope lists: one copy of each saves
        # about a quarter of a cached verdict's memory (issue #6, RSS per worker).
        if len(self._names) < _MAX_SHARED_NAMES:
            return self._names.setdefault(names, names)
        return self._names.get(names, names)

    def __len__(self):
        if self._cache is None:
            return 0
        with self._lock:
            self._cache.expire()
            return len(self._cache)
