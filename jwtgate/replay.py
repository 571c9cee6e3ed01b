"""Replay caches for DPoP proof `jti`s: each key is accepted once until it expires.

One method, `first_use(key, expires_at)`: True the first time a key is seen, False afterwards. The
SQLite cache is shared by every worker on one host (one file in the data directory); the Redis cache
by validators on every host (SET key NX EXAT expires_at).
"""

import math
import os
import sqlite3
import threading
import time

_BUSY_TIMEOUT_SECONDS = 2.0
# While another process writes, retry after this long (doubling, at most _MAX_RETRY_SECONDS):
# SQLite's own busy handler sleeps a millisecond at least, and the validator's event loop with it.
_FIRST_RETRY_SECONDS = 0.00005
_MAX_RETRY_SECONDS = 0.002
# Expired rows are deleted at most this often per process: one indexed DELETE, not one per request.
_PURGE_INTERVAL_SECONDS = 5.0


class MemoryReplayCache:
    """One process's replay cache: for tests and single-worker use only (workers do not share it)."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._seen = {}
        self._lock = threading.Lock()

    def first_use(self, key, expires_at):
        now = self._clock()
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = expires_at
            return True


_SCHEMA = (
    "PRAGMA journal_mode = WAL",
    # A crash may lose the last few jtis: a proof lives a minute, and its iat check still holds.
    "PRAGMA synchronous = NORMAL",
    "CREATE TABLE IF NOT EXISTS dpop_jti (key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS dpop_jti_expiry ON dpop_jti (expires_at)",
)


class SqliteReplayCache:
    """A replay cache in one SQLite file, shared by every process that opens it; thread-safe.

    The file is opened on first use, so a validator that never sees a DPoP proof never needs it.
    """

    def __init__(self, path, clock=time.time):
        self.path = str(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._connection = None
        self._pid = None
        self._next_purge = 0.0

    def _connect(self):
        # One connection per process: a connection must not cross a fork (gunicorn's workers).
        if self._connection is None or self._pid != os.getpid():
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            # No busy timeout: SQLite's handler sleeps a millisecond at least; _write retries sooner.
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
            try:
                for statement in _SCHEMA:
                    self._write(connection, statement)
            except BaseException:
                connection.close()
                raise
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def first_use(self, key, expires_at):
        now = self._clock()
        with self._lock:
            connection = self._connect()
            if now >= self._next_purge:
                self._next_purge = now + _PURGE_INTERVAL_SECONDS
                self._write(connection, "DELETE FROM dpop_jti WHERE expires_at < ?", (int(now),))
            try:
                # The primary key makes the check and the insert one atomic step across processes.
                self._write(connection, "INSERT OR FAIL INTO dpop_jti (key, expires_at) VALUES (?, ?)",
                            (bytes(key), int(expires_at)))
            except sqlite3.IntegrityError:
                return False
            return True

    @staticmethod
    def _write(connection, statement, parameters=()):
        """Execute one statement, retrying while another process holds the lock (OperationalError after
        _BUSY_TIMEOUT_SECONDS)."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
        pause = _FIRST_RETRY_SECONDS
        while True:
            try:
                return connection.execute(statement, parameters)
            except sqlite3.OperationalError as error:
                # The primary result code: BUSY_SNAPSHOT and BUSY_RECOVERY are worth a retry too.
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _MAX_RETRY_SECONDS)


class RedisReplayCache:
    """A replay cache in Redis, shared by every validator that uses the same Redis; thread-safe.

    A Redis error propagates: /verify then refuses the request (fail closed), it never skips the check.
    """

    PREFIX = "jwtgate:dpop:"

    def __init__(self, url, prefix=PREFIX):
        # Imported here: the Redis client costs every worker memory, and only this needs it.
        from jwtgate.redis_revocation import client_from_url

        self._client = client_from_url(url)
        # The validators' proofs and the auth API's each have their own keys.
        self._prefix = prefix

    def first_use(self, key, expires_at):
        # SET NX is the check and the insert in one atomic step; EXAT (whole seconds) is rounded up
        # so the key outlives the proof's window, never the other way round.
        return bool(self._client.set(self._prefix + bytes(key).hex(), b"1", nx=True, exat=math.ceil(expires_at)))
