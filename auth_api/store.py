"""Users, their password hashes and grants, in SQLite under the data directory."""

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
)

BUSY_TIMEOUT_MS = 5000


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
