"""The revocation store in Redis, for validators and auth APIs on several machines.

Same methods as SqliteRevocationStore: `add` appends, `changes(after)` reads every entry after a
cursor. Entries go to a Redis stream (its IDs are the cursor, so a worker that missed a message
catches up by reading after its cursor) and each add is also published, so every subscribed
validator worker syncs at once instead of at its next poll (see validator/redis_feed.py).
"""

import time

import redis

from jwtgate.revocation import KINDS, Revocation

STREAM = "jwtgate:revocations"
CHANNEL = "jwtgate:revocations:added"
# The longest an entry can matter: AUTH_ACCESS_TOKEN_TTL_SECONDS at most (86400) plus the
# revocation margin (300); every entry expires within this of being added.
DEFAULT_RETENTION_SECONDS = 86400 + 300
# Short, so a Redis outage shows as an error (and the staleness bound runs) rather than a hang.
SOCKET_TIMEOUT_SECONDS = 2


def client_from_url(url):
    """A thread-safe client with a connection pool; never shares a connection between threads."""
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, health_check_interval=30)


def _cursor(after):
    # The SQLite store's first cursor is 0; a stream's is "0-0".
    return "0-0" if after in (0, None, "") else after


class RedisRevocationStore:
    """Revocations in a Redis stream, trimmed once no entry in its oldest part can matter any more."""

    def __init__(self, url, *, retention_seconds=DEFAULT_RETENTION_SECONDS, clock=time.time, client=None):
        self.url = url
        self.retention_seconds = retention_seconds
        self._clock = clock
        self.client = client if client is not None else client_from_url(url)

    def create(self):
        """Nothing to create (the stream appears with its first entry); checks that Redis answers."""
        self.client.ping()

    def add(self, revocations):
        """Append revocations atomically (MULTI/EXEC), drop what can no longer matter, and publish."""
        entries = list(revocations)
        for entry in entries:
            if entry.kind not in KINDS:
                raise ValueError(f"unknown revocation kind {entry.kind!r}")
        if not entries:
            return
        with self.client.pipeline(transaction=True) as pipe:
            for entry in entries:
                pipe.xadd(STREAM, {"kind": entry.kind, "value": entry.value, "cutoff": entry.cutoff,
                                   "expires_at": entry.expires_at})
            pipe.publish(CHANNEL, str(len(entries)))
            added = pipe.execute()[0]
        # Stream IDs start with the Redis server's milliseconds when they were added: an entry
        # added longer ago than the retention has expired, whatever its kind.
        added_ms = int(added.split(b"-")[0])
        self.client.xtrim(STREAM, minid=max(0, added_ms - self.retention_seconds * 1000), approximate=False)

    def changes(self, after):
        """(live revocations after the cursor, the new cursor). Raises redis.RedisError when unreachable."""
        rows = self.client.xrange(STREAM, min=f"({_cursor(after)}", max="+")
        now = int(self._clock())
        live = []
        for _, fields in rows:
            expires_at = int(fields[b"expires_at"])
            if expires_at >= now:
                live.append(Revocation(fields[b"kind"].decode(), fields[b"value"].decode(), expires_at,
                                       int(fields[b"cutoff"])))
        return live, rows[-1][0].decode() if rows else after

    def close(self):
        self.client.close()
