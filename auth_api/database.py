"""The two engines the user store runs on: SQLite (the embedded default) and PostgreSQL.

The store's SQL is written once, with `?` placeholders, in what both engines accept; this module
holds the few differences: how to connect, how a write transaction takes its lock, the
placeholder style, and row locks (`FOR UPDATE`, which SQLite has no use for: BEGIN IMMEDIATE
already holds the one write lock).
"""

import contextlib
import os
import sqlite3

BUSY_TIMEOUT_MS = 5000
# Seconds a request waits for a pooled PostgreSQL connection before failing with PoolTimeout.
POOL_TIMEOUT_SECONDS = 5
# psycopg_pool retries a lost connection after 1, 2, 4 ... s for this long, then tries again at the next
# request. Its default, 300 s, lets the delay grow with the outage: logins kept failing for about as
# long again after PostgreSQL was back (tests/scaleout/test_outages.py).
RECONNECT_TIMEOUT_SECONDS = 5
# Any constant shared by every migrating process: pg_advisory_xact_lock serialises them.
_MIGRATION_LOCK = 0x6A777467


def is_postgres_url(value):
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


class SqliteDatabase:
    """A SQLite file; a connection per call, so one instance serves every thread."""

    engine = "sqlite"

    def __init__(self, path):
        self.path = str(path)

    @property
    def integrity_error(self):
        return sqlite3.IntegrityError

    @property
    def missing_table_error(self):
        return sqlite3.OperationalError

    def row_lock(self, tables):
        return ""

    def lock_key(self, connection, key):
        """Serialise writers on one key: BEGIN IMMEDIATE already serialises every SQLite writer."""

    def prepare(self):
        # SQLite gives the -wal and -shm files the database file's mode, so creating it 0600 covers all three.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self.connect() as connection:
            connection.execute("PRAGMA journal_mode = WAL")

    @contextlib.contextmanager
    def connect(self):
        # isolation_level=None: the sqlite3 module starts no implicit transactions; transaction() begins them.
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def transaction(self, *, migration=False):
        with self.connect() as connection:
            # IMMEDIATE takes the write lock up front, so a read-then-write never fails half way with BUSY.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def close(self):
        pass


class _Postgres:
    """A psycopg connection that takes the store's `?` placeholders."""

    def __init__(self, connection):
        self._connection = connection

    def execute(self, statement, params=()):
        # The store's SQL holds no `%` and no `?` but its placeholders.
        return self._connection.execute(statement.replace("?", "%s"), params)


class PostgresDatabase:
    """A PostgreSQL database through a psycopg connection pool (one per process)."""

    engine = "postgresql"

    def __init__(self, url, *, password=None, max_size=8):
        import psycopg_pool

        self.url = url
        self.path = None
        self._pool = psycopg_pool.ConnectionPool(url, min_size=1, max_size=max_size, open=True,
                                                 timeout=POOL_TIMEOUT_SECONDS,
                                                 reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
                                                 # A connection that broke while idle (a PostgreSQL
                                                 # restart) is replaced, not handed out to fail: one
                                                 # round trip per request, beside argon2's 50 ms.
                                                 check=psycopg_pool.ConnectionPool.check_connection,
                                                 kwargs=self.connect_kwargs(password))

    @staticmethod
    def connect_kwargs(password):
        """psycopg's connection arguments: a password given apart overrides any in the URL."""
        kwargs = {"connect_timeout": 5}
        if password is not None:
            kwargs["password"] = password.decode()
        return kwargs

    @property
    def integrity_error(self):
        import psycopg

        return psycopg.IntegrityError

    @property
    def missing_table_error(self):
        import psycopg

        return psycopg.errors.UndefinedTable

    def row_lock(self, tables):
        return f" FOR UPDATE OF {tables}"

    def lock_key(self, connection, key):
        """Serialise writers on one key, even one with no row yet to lock FOR UPDATE."""
        connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    def prepare(self):
        pass

    @contextlib.contextmanager
    def connect(self):
        # The pool commits when the block ends and rolls back on an exception: one transaction per call.
        with self._pool.connection() as connection:
            yield _Postgres(connection)

    @contextlib.contextmanager
    def transaction(self, *, migration=False):
        with self.connect() as connection:
            if migration:
                # Replicas upgrading at once: one applies the migrations, the others then see them done.
                connection.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            yield connection

    def close(self):
        self._pool.close()


def open_database(target, *, password=None):
    """The database a URL or path names: postgresql://... for PostgreSQL, else a SQLite file path."""
    return PostgresDatabase(target, password=password) if is_postgres_url(target) else SqliteDatabase(target)
