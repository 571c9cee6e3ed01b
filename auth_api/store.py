"""Users, login sessions and refresh tokens: in SQLite under the data directory, or in PostgreSQL
(AUTH_DATABASE_URL), with one schema history for both."""

import json
import os
import re
import time
from dataclasses import dataclass, field

from auth_api.database import SqliteDatabase, is_postgres_url, open_database

# The username becomes the `sub` claim and, through the validator, an HTTP header value.
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# Roles travel as a comma-joined header and scopes as a space-joined claim: neither may hold a separator.
GRANT = re.compile(r"[A-Za-z0-9._:/-]{1,64}")

# Applied in order, each once; the list index plus one is the schema version it brings the database to.
# SQL that SQLite and PostgreSQL both accept: `python -m auth_api db upgrade` applies it to either.
# Times are Unix seconds; BIGINT because PostgreSQL's INTEGER ends in 2038 (SQLite reads both alike).
MIGRATIONS = (
    """
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        roles TEXT NOT NULL DEFAULT '[]',
        scope TEXT NOT NULL DEFAULT '',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL
    )
    """,
    # A session is one login and every refresh token rotated from it (the token family).
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    )
    """,
    "CREATE INDEX sessions_username ON sessions (username)",
    # Refresh tokens are stored as SHA-256 hashes only.
    """
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        issued_at BIGINT NOT NULL,
        spent_at BIGINT
    )
    """,
    "CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id)",
    # Failed logins per account name (auth_api.limits): the key is the name's SHA-256, known user or not.
    """
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure_at BIGINT NOT NULL,
        locked_until BIGINT NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX login_failures_last ON login_failures (last_failure_at)",
    # DPoP (RFC 9449 section 5): the thumbprint of the key a session's refresh tokens are bound to, or NULL.
    "ALTER TABLE sessions ADD COLUMN jkt TEXT",
)


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


class SchemaOutOfDate(RuntimeError):
    """The database's schema is older than this code: run `python -m auth_api db upgrade`."""


class UserStore:
    """The user database on SQLite (a connection per call) or PostgreSQL (a pool); one instance serves every thread."""

    def __init__(self, database, *, clock=time.time):
        # A path is a SQLite file, as before PostgreSQL was an option.
        self.database = database if hasattr(database, "transaction") else SqliteDatabase(database)
        self.path = self.database.path
        self._clock = clock

    @classmethod
    def open(cls, settings, *, clock=time.time, upgrade=None):
        """The store settings.database_url names (default <data_dir>/auth.db), at the latest schema.

        SQLite is upgraded on open, as it always was; PostgreSQL only by `db upgrade` (upgrade=True),
        so replicas never race to change a shared schema, and one left behind refuses to start.
        """
        os.makedirs(settings.data_dir, exist_ok=True)
        target = settings.database_url or os.path.join(settings.data_dir, "auth.db")
        store = cls(open_database(target, password=settings.database_password), clock=clock)
        if upgrade if upgrade is not None else not is_postgres_url(target):
            store.migrate()
        elif (version := store.applied_version()) != len(MIGRATIONS):
            store.close()
            raise SchemaOutOfDate(f"database schema version {version}, this code needs {len(MIGRATIONS)}: "
                                  "run `python -m auth_api db upgrade`")
        return store

    def _connect(self):
        return self.database.connect()

    def _write(self):
        return self.database.transaction()

    def close(self):
        self.database.close()

    def migrate(self):
        """Create the database (a SQLite file: mode 0600) and apply every migration it has not seen."""
        self.database.prepare()
        with self.database.transaction(migration=True) as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > len(MIGRATIONS):
                raise RuntimeError(f"database schema version {current} is newer than this code knows")
            for version, statement in enumerate(MIGRATIONS[current:], start=current + 1):
                connection.execute(statement)
                connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return len(MIGRATIONS) - current

    def applied_version(self):
        """schema_version(), or 0 for a database no migration has touched yet."""
        try:
            return self.schema_version()
        except self.database.missing_table_error:
            return 0

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
        except self.database.integrity_error:
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

    def create_session(self, session_id, username, token_hash, *, expires_at, jkt=None):
        """Record a login: its session (bound to the DPoP key jkt, if given) and first refresh token."""
        now = int(self._clock())
        with self._write() as connection:
            connection.execute(
                "INSERT INTO sessions (id, username, created_at, expires_at, jkt) VALUES (?, ?, ?, ?, ?)",
                (session_id, username, now, expires_at, jkt),
            )
            connection.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?, ?, ?)",
                (token_hash, session_id, now),
            )

    def rotate_refresh_token(self, token_hash, new_hash, jkt=None):
        """Spend token_hash and issue new_hash in its session, in one transaction.

        A token already spent is a theft signal (RFC 9700 section 4.14.2): the whole
        session is revoked and the outcome is "reused". BEGIN IMMEDIATE serialises
        concurrent rotations on SQLite, and SELECT ... FOR UPDATE on PostgreSQL, so of two
        requests with one token exactly one wins.
        """
        now = int(self._clock())
        with self._write() as connection:
            row = connection.execute(
                "SELECT r.session_id, r.spent_at, s.username, s.expires_at, s.revoked_at, u.disabled, s.jkt"
                " FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id"
                " JOIN users u ON u.username = s.username WHERE r.token_hash = ?"
                # PostgreSQL: lock the token and its session, so a concurrent rotation waits, then sees it spent.
                + self.database.row_lock("r, s"),
                (token_hash,),
            ).fetchone()
            if row is None:
                return Refresh("invalid")
            session_id, spent_at, username, expires_at, revoked_at, disabled, bound_jkt = row
            if bound_jkt is not None and bound_jkt != jkt:
                # A DPoP-bound session, and no proof or another key's: refused, nothing spent or revoked
                # (whoever sends it cannot use it, so it proves no theft from the key holder).
                return Refresh("wrong_key", session_id, username, expires_at)
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

    def session_key(self, session_id):
        """The thumbprint of the DPoP key the session is bound to, or None (unbound, or no such session)."""
        with self._connect() as connection:
            row = connection.execute("SELECT jkt FROM sessions WHERE id = ?", (session_id,)).fetchone()
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
