"""Users, login sessions and refresh tokens, in SQLite under the data directory."""

import contextlib
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field

# The username becomes the `sub` claim and, through the validator, an HTTP header value.
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# Roles travel as a comma-joined header and scopes as a space-joined claim: neither may hold a separator.
GRANT = re.compile(r"[A-Za-z0-9._:/-]{1,64}")

# Applied in order, each once; the list index plus one is the schema version it brings the database to.
MIGRATIONS = (
    """
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        roles TEXT NOT NULL DEFAULT '[]',
        scope TEXT NOT NULL DEFAULT '',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    )
    """,
    # A session is one login and every refresh token rotated from it (the token family).
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    )
    """,
    "CREATE INDEX sessions_username ON sessions (username)",
    # Refresh tokens are stored as SHA-256 hashes only.
    """
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        issued_at INTEGER NOT NULL,
        spent_at INTEGER
    )
    """,
    "CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id)",
    # Failed logins per account name (auth_api.limits): the key is the name's SHA-256, known user or not.
    """
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL,
        locked_until INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX login_failures_last ON login_failures (last_failure_at)",
)

BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Refresh:
    """What presenting a refresh token led to: status is "ok", "reused" or "invalid"."""

    status: str
    session_id: str | None = None
    username: str | None = None
    expires_at: int = 0


class UserExists(ValueError):
    """add_user was given a name that is already taken."""


class UnknownUser(LookupError):
    """The named user does not exist."""


@dataclass(frozen=True)
class User:
    """One row of the users table."""

    username: str
    password_hash: str = field(repr=False)
    roles: tuple
    scope: str
    disabled: bool
    created_at: int


def valid_username(username):
    return isinstance(username, str) and USERNAME.fullmatch(username) is not None


def check_username(username):
    if not valid_username(username):
        raise ValueError(f"invalid username {username!r}: use 1 to 64 of A-Z a-z 0-9 . _ @ -")
    return username


def check_grants(kind, values):
    """The values as a list, or ValueError naming the first one that could smuggle a separator."""
    values = list(values)
    for value in values:
        if not isinstance(value, str) or not GRANT.fullmatch(value):
            raise ValueError(f"invalid {kind} {value!r}: use 1 to 64 of A-Z a-z 0-9 . _ : / -")
    return values


def _row_to_user(row):
    username, password_hash, roles, scope, disabled, created_at = row
    return User(username, password_hash, tuple(json.loads(roles)), scope, bool(disabled), created_at)


_COLUMNS = "username, password_hash, roles, scope, disabled, created_at"


class UserStore:
    """The user database; opens a connection per call, so one instance serves every thread."""

    def __init__(self, path, *, clock=time.time):
        self.path = path
        self._clock = clock

    @classmethod
    def open(cls, settings, *, clock=time.time):
        """The store at <data_dir>/auth.db, created and migrated to the latest schema."""
        os.makedirs(settings.data_dir, exist_ok=True)
        store = cls(os.path.join(settings.data_dir, "auth.db"), clock=clock)
        store.migrate()
        return store

    @contextlib.contextmanager
    def _connect(self):
        # isolation_level=None: the sqlite3 module starts no implicit transactions; _write begins them.
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _write(self):
        with self._connect() as connection:
            # IMMEDIATE takes the write lock up front, so a read-then-write never fails half way with BUSY.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def migrate(self):
        """Create the database file (mode 0600) and apply every migration it has not seen."""
        # SQLite gives the -wal and -shm files the database file's mode, so creating it 0600 covers all three.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode = WAL")
        with self._write() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > len(MIGRATIONS):
                raise RuntimeError(f"database schema version {current} is newer than this code knows")
            for version, statement in enumerate(MIGRATIONS[current:], start=current + 1):
                connection.execute(statement)
                connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self):
        with self._connect() as connection:
            return connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    def add_user(self, username, password_hash, *, roles=(), scopes=()):
        check_username(username)
        roles = check_grants("role", roles)
        scope = " ".join(check_grants("scope", scopes))
        try:
            with self._write() as connection:
                connection.execute(
                    f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?)",
                    (username, password_hash, json.dumps(roles), scope, int(self._clock())),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"user {username!r} already exists") from None

    def put_user(self, username, password_hash, *, roles=(), scopes=()):
        """Create the user, or reset an existing one to these grants and password and enable it."""
        check_username(username)
        roles = check_grants("role", roles)
        scope = " ".join(check_grants("scope", scopes))
        with self._write() as connection:
            connection.execute(
                f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
                "roles = excluded.roles, scope = excluded.scope, disabled = 0",
                (username, password_hash, json.dumps(roles), scope, int(self._clock())),
            )

    def get_user(self, username):
        """The user, or None; a name the store could never hold is simply not found."""
        if not valid_username(username):
            return None
        with self._connect() as connection:
            row = connection.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return _row_to_user(row) if row else None

    def list_users(self):
        with self._connect() as connection:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_row_to_user(row) for row in rows]

    def disable_user(self, username):
        self._update(username, "disabled = 1", ())

    def set_password(self, username, password_hash):
        self._update(username, "password_hash = ?", (password_hash,))

    def _update(self, username, assignment, values):
        check_username(username)
        with self._write() as connection:
            cursor = connection.execute(f"UPDATE users SET {assignment} WHERE username = ?", (*values, username))
            if cursor.rowcount == 0:
                raise UnknownUser(f"no user {username!r}")

    def create_session(self, session_id, username, token_hash, *, expires_at):
        """Record a login: its session and first refresh token."""
        now = int(self._clock())
        with self._write() as connection:
            connection.execute(
                "INSERT INTO sessions (id, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (session_id, username, now, expires_at),
            )
            connection.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
                (token_hash, session_id, now),
            )

    def rotate_refresh_token(self, token_hash, new_hash):
        """Spend token_hash and issue new_hash in its session, in one transaction.

        A token already spent is a theft signal (RFC 9700 section 4.14.2): the whole
        session is revoked and the outcome is "reused". BEGIN IMMEDIATE serialises
        concurrent rotations, so of two requests with one token exactly one wins.
        """
        now = int(self._clock())
        with self._write() as connection:
            row = connection.execute(
                "SELECT r.session_id, r.spent_at, s.username, s.expires_at, s.revoked_at, u.disabled"
                " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id"
                " JOIN users u ON u.username = s.username WHERE r.token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return Refresh("invalid")
            session_id, spent_at, username, expires_at, revoked_at, disabled = row
            if spent_at is not None:
                connection.execute(
                    "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, session_id))
                return Refresh("reused", session_id, username, expires_at)
            if revoked_at is not None or disabled or expires_at <= now:
                return Refresh("invalid", session_id, username, expires_at)
            connection.execute("UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ?", (now, token_hash))
            connection.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
                (new_hash, session_id, now),
            )
            return Refresh("ok", session_id, username, expires_at)

    def session_of(self, token_hash):
        """The session id a refresh token belongs to, or None."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT session_id FROM refresh_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
        return row[0] if row else None

    def revoke_session(self, session_id):
        now = int(self._clock())
        with self._write() as connection:
            connection.execute(
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, session_id))

    def revoke_user_sessions(self, username):
        """End every session of the user; return how many were still live."""
        now = int(self._clock())
        with self._write() as connection:
            cursor = connection.execute(
                "UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL", (now, username))
            return cursor.rowcount

    def purge_sessions(self):
        """Delete sessions (and their refresh tokens) that expired."""
        now = int(self._clock())
        with self._write() as connection:
            connection.execute(
                "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE expires_at < ?)",
                (now,))
            connection.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
