"""Per-account login backoff: after repeated failures an account name is locked for a growing period.

Every attempt is charged to the name as typed before its password is checked, whether or not
such a user exists: parallel guesses cannot outrun the count, and a lockout says nothing about
which accounts exist (the answer is the same 401 either way). A successful login clears the
count. Names are stored as SHA-256 digests only, since people type passwords into username fields.

The counts live behind FailureCounters (charge, clear): SQLite in auth.db here, and a Redis
implementation can follow (issue #8) for auth APIs on several machines.
"""

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LockoutPolicy:
    """How failures turn into lockouts: none below `threshold`, then base, 2 x base, ... up to max."""

    threshold: int = 5
    base_seconds: int = 30
    max_seconds: int = 900
    # A name with no failed attempt for this long starts again from zero.
    forget_after_seconds: int = 86400

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.lockout_threshold, settings.lockout_base_seconds, settings.lockout_max_seconds)

    def lock_seconds(self, failures):
        """Seconds that `failures` consecutive failures lock a name for (0: not locked)."""
        if not self.threshold or failures < self.threshold:
            return 0
        return min(self.max_seconds, self.base_seconds << min(failures - self.threshold, 32))


class FailureCounters(Protocol):
    """Failure counts with a lock deadline per key; each method is atomic for its key."""

    def charge(self, key: str, now: int, policy: LockoutPolicy) -> int:
        """If key is locked at `now`, return the seconds left and change nothing; otherwise count
        one more failure (after forgetting an old count), lock the key for policy.lock_seconds()
        of the new count, and return 0."""

    def clear(self, key: str) -> None:
        """Forget every failure of key."""


def _next_state(row, now, policy):
    """(seconds still locked, new failures, new locked_until) from a stored (failures, last, until)."""
    failures, last_failure_at, locked_until = row or (0, now, 0)
    if locked_until > now:
        return locked_until - now, failures, locked_until
    if now - last_failure_at >= policy.forget_after_seconds:
        failures = 0
    failures += 1
    lock = policy.lock_seconds(failures)
    return 0, failures, now + lock if lock else 0


class SqlFailureCounters:
    """FailureCounters in the login_failures table of the user store's database (SQLite or PostgreSQL)."""

    def __init__(self, database):
        self._database = database

    def charge(self, key, now, policy):
        with self._database.transaction() as connection:
            # The read and the write below are one step for concurrent attempts on this key.
            self._database.lock_key(connection, key)
            row = connection.execute(
                "SELECT failures, last_failure_at, locked_until FROM login_failures WHERE key = ?", (key,)
            ).fetchone()
            wait, failures, locked_until = _next_state(row, now, policy)
            if wait:
                return wait
            connection.execute(
                "INSERT INTO login_failures (key, failures, last_failure_at, locked_until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
                " last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until",
                (key, failures, now, locked_until),
            )
            # Keep the table as small as the attempts of the last day.
            connection.execute(
                "DELETE FROM login_failures WHERE last_failure_at < ? AND locked_until < ?",
                (now - policy.forget_after_seconds, now),
            )
            return 0

    def clear(self, key):
        with self._database.transaction() as connection:
            connection.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    def failures(self, key):
        """The stored count (for tests and operators)."""
        with self._database.connect() as connection:
            row = connection.execute("SELECT failures FROM login_failures WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0


class MemoryFailureCounters:
    """FailureCounters in one process's memory: for tests, and single-process tools."""

    def __init__(self):
        self._rows = {}
        self._lock = threading.Lock()

    def charge(self, key, now, policy):
        with self._lock:
            wait, failures, locked_until = _next_state(self._rows.get(key), now, policy)
            if not wait:
                self._rows[key] = (failures, now, locked_until)
            return wait

    def clear(self, key):
        with self._lock:
            self._rows.pop(key, None)

    def failures(self, key):
        with self._lock:
            return self._rows.get(key, (0,))[0]


def account_key(username):
    """The stored key of an account name: its SHA-256, never the name itself."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Charges each login attempt to its account name; a successful login clears the name."""

    def __init__(self, counters, policy, clock=time.time):
        self._counters = counters
        self._policy = policy
        self._clock = clock

    def attempt(self, username):
        """0 to go ahead (the attempt is counted as a failure until `succeeded`), or the seconds locked."""
        if not self._policy.threshold:
            return 0
        return self._counters.charge(account_key(username), int(self._clock()), self._policy)

    def succeeded(self, username):
        if self._policy.threshold:
            self._counters.clear(account_key(username))


# For a Login built without one: no lockout.
UNTHROTTLED = LoginThrottle(MemoryFailureCounters(), LockoutPolicy(threshold=0))
