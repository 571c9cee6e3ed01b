"""The revocation store: what the auth API revokes and every validator worker must refuse.

Three kinds of entry, each dropped once the tokens it revokes have expired:
`jti` (one access token), `sid` (every access token of one login session) and
`sub` (every token of one user issued before `cutoff`). The SQLite store below
is the embedded default; a Redis store (issue #8) implements the same methods.
"""

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass

KINDS = frozenset({"jti", "sid", "sub"})
_BUSY_TIMEOUT_MS = 5000


def is_redis_url(value):
    """True when a store setting names Redis (jwtgate.redis_revocation) rather than a SQLite file."""
    return isinstance(value, str) and value.startswith(("redis://", "rediss://", "unix://"))


@dataclass(frozen=True)
class Revocation:
    """One revocation: tokens matching kind=value (and, for `sub`, issued before cutoff) are refused."""

    kind: str
    value: str
    expires_at: int
    cutoff: int = 0


class SqliteRevocationStore:
    """Revocations in a SQLite file: the auth API appends, validators poll for rows after a cursor."""

    def __init__(self, path, *, clock=time.time):
        self.path = str(path)
        self._clock = clock

    @contextlib.contextmanager
    def _connect(self, readonly=False):
        target = f"file:{self.path}?mode=ro" if readonly else self.path
        connection = sqlite3.connect(target, uri=readonly, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        try:
            yield connection
        finally:
            connection.close()

    def create(self):
        """Create the file (mode 0600) and its table; safe to repeat."""
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS revocations ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " kind TEXT NOT NULL, value TEXT NOT NULL,"
                " cutoff INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL)"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS revocations_expiry ON revocations (expires_at)")

    def add(self, revocations):
        """Append revocations in one transaction, and drop the rows that can no longer matter."""
        rows = [(r.kind, r.value, r.cutoff, r.expires_at) for r in revocations]
        for kind, *_ in rows:
            if kind not in KINDS:
                raise ValueError(f"unknown revocation kind {kind!r}")
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    "INSERT INTO revocations (kind, value, cutoff, expires_at) VALUES (?, ?, ?, ?)", rows)
                connection.execute("DELETE FROM revocations WHERE expires_at < ?", (int(self._clock()),))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def changes(self, after):
        """(live revocations with id > after, the new cursor). Raises sqlite3.Error when unreadable."""
        # One statement, so one snapshot: reading the rows and the cursor separately could
        # move the cursor past a row committed in between, and this worker would never see it.
        with self._connect(readonly=True) as connection:
            rows = connection.execute(
                "SELECT id, kind, value, cutoff, expires_at FROM revocations WHERE id > ? ORDER BY id", (after,)
            ).fetchall()
        now = int(self._clock())
        live = [Revocation(kind, value, expires_at, cutoff)
                for _, kind, value, cutoff, expires_at in rows if expires_at >= now]
        return live, rows[-1][0] if rows else after


class NoRevocations:
    """For setups without a revocation store (VALIDATOR_REVOCATION_DB=none): nothing is revoked."""

    def refusal(self, identity):
        return None

    def stale(self):
        return False

    async def sync(self):
        return None

    async def run(self):
        return None
