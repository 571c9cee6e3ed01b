"""Each worker's in-memory copy of the live revocations, kept fresh by polling the store."""

import asyncio
import logging
import time

log = logging.getLogger(__name__)


class RevocationSet:
    """Live revocations, checked against every verdict (cached ones too) with dictionary lookups only."""

    def __init__(self):
        self._jti = {}
        self._sid = {}
        self._sub = {}

    def apply(self, revocations):
        for entry in revocations:
            if entry.kind == "jti":
                self._jti[entry.value] = max(entry.expires_at, self._jti.get(entry.value, 0))
            elif entry.kind == "sid":
                self._sid[entry.value] = max(entry.expires_at, self._sid.get(entry.value, 0))
            elif entry.kind == "sub":
                cutoff, expires_at = self._sub.get(entry.value, (0, 0))
                self._sub[entry.value] = (max(cutoff, entry.cutoff), max(expires_at, entry.expires_at))

    def purge(self, now):
        """Forget entries whose tokens have all expired."""
        self._jti = {key: expiry for key, expiry in self._jti.items() if expiry >= now}
        self._sid = {key: expiry for key, expiry in self._sid.items() if expiry >= now}
        self._sub = {key: value for key, value in self._sub.items() if value[1] >= now}

    def is_revoked(self, identity):
        sub, jti, sid = identity.ids()
        if jti in self._jti or (sid is not None and sid in self._sid):
            return True
        revoked_before = self._sub.get(sub)
        # A token issued in the cutoff's own second is revoked too: iat has one-second
        # resolution, and refusing a fresh token beats accepting a stale one.
        return revoked_before is not None and identity.iat <= revoked_before[0]

    def __len__(self):
        return len(self._jti) + len(self._sid) + len(self._sub)


class RevocationFeed:
    """Polls a revocation store into a RevocationSet; reports stale when the store stays unreadable."""

    def __init__(self, store, revocations, *, interval, max_staleness, clock=time.monotonic, wall_clock=time.time):
        self._store = store
        self._revocations = revocations
        self._interval = interval
        self._max_staleness = max_staleness
        self._clock = clock
        self._wall_clock = wall_clock
        self._cursor = 0
        self._synced_at = None
        self._failing = False

    def stale(self):
        """True before the first read of the store and once it has been unreadable for too long."""
        return self._synced_at is None or self._clock() - self._synced_at > self._max_staleness

    def refusal(self, identity):
        """The reason to refuse this identity ("revoked", "revocation_unavailable"), or None."""
        if self.stale():
            # Fail closed: a set we cannot refresh may be missing a logout.
            return "revocation_unavailable"
        if self._revocations.is_revoked(identity):
            return "revoked"
        return None

    async def sync(self):
        """Read every change since the last sync; on failure keep the set and log once."""
        try:
            changes, cursor = await asyncio.to_thread(self._store.changes, self._cursor)
        except Exception as error:
            if not self._failing:
                log.error("revocation store unreadable", extra={"error": type(error).__name__})
            self._failing = True
            return
        if self._failing:
            log.info("revocation store readable again")
        self._failing = False
        self._revocations.apply(changes)
        if changes:
            log.info("revocations applied", extra={"keys": len(changes), "cursor": cursor})
        self._cursor = cursor
        self._synced_at = self._clock()

    async def run(self):
        """Sync forever, every interval; purge expired entries about once a minute."""
        purged_at = self._clock()
        while True:
            await asyncio.sleep(self._interval)
            await self.sync()
            if self._clock() - purged_at > 60:
                self._revocations.purge(self._wall_clock())
                purged_at = self._clock()


class ProviderRevocations:
    """A feed's refusals for the tokens it speaks for: those of every provider but the `unrevoked` ones."""

    def __init__(self, feed, unrevoked):
        self._feed = feed
        self._unrevoked = frozenset(unrevoked)

    def refusal(self, identity):
        if identity.provider in self._unrevoked:
            return None
        return self._feed.refusal(identity)
