"""The user store on SQLite and on PostgreSQL: schema, validation and updates."""

import os
import sqlite3
import stat

import pytest

from auth_api import store as store_module
from auth_api.config import Settings
from auth_api.sessions import PURGE_INTERVAL_SECONDS, Sessions, refresh_hash
from auth_api.store import UnknownUser, UserExists, UserStore


class FakeClock:
    def __init__(self, now=1_700_000_000.75):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path, auth_database_url):
    store = UserStore.open(Settings(data_dir=str(tmp_path), database_url=auth_database_url), clock=FakeClock(),
                           upgrade=True)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path):
    return UserStore.open(Settings(data_dir=str(tmp_path)), clock=FakeClock())


def test_database_file_is_private_and_in_wal_mode(tmp_path, sqlite_store):
    sqlite_store.add_user("alice", "hash")
    path = tmp_path / "auth.db"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for sidecar in ("auth.db-wal", "auth.db-shm"):
        if (tmp_path / sidecar).exists():
            assert stat.S_IMODE(os.stat(tmp_path / sidecar).st_mode) == 0o600
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_is_at_the_latest_version_and_migrating_again_is_a_no_op(tmp_path, sqlite_store):
    store = sqlite_store
    assert store.schema_version() == len(store_module.MIGRATIONS)
    store.add_user("alice", "hash")
    UserStore.open(Settings(data_dir=str(tmp_path)))
    assert store.schema_version() == len(store_module.MIGRATIONS)
    assert store.get_user("alice") is not None
    with sqlite3.connect(tmp_path / "auth.db") as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(store_module.MIGRATIONS) + 1))


def test_a_newer_schema_is_refused(tmp_path, sqlite_store):
    store = sqlite_store
    with sqlite3.connect(tmp_path / "auth.db") as connection:
        connection.execute("INSERT INTO schema_version (version) VALUES (?)", (len(store_module.MIGRATIONS) + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        store.migrate()


def test_add_and_get(store):
    store.add_user("alice@example.com", "hash-a", roles=["admin", "user"], scopes=["orders:read", "orders:write"])
    user = store.get_user("alice@example.com")
    assert user.username == "alice@example.com"
    assert user.password_hash == "hash-a"
    assert user.roles == ("admin", "user")
    assert user.scope == "orders:read orders:write"
    assert user.disabled is False
    assert user.created_at == 1_700_000_000
    assert "hash-a" not in repr(user)


def test_user_without_grants(store):
    store.add_user("bob", "hash")
    user = store.get_user("bob")
    assert (user.roles, user.scope) == ((), "")


def test_duplicate_user(store):
    store.add_user("alice", "hash")
    with pytest.raises(UserExists):
        store.add_user("alice", "other")
    assert store.get_user("alice").password_hash == "hash"


@pytest.mark.parametrize(
    "username", ["", "a" * 65, "has space", "comma,name", "new\nline", "cr\rname", "colon:name", "ünïcode", None, 7]
)
def test_bad_usernames_are_refused(store, username):
    with pytest.raises(ValueError, match="invalid username"):
        store.add_user(username, "hash")
    assert store.list_users() == []


@pytest.mark.parametrize("bad", ["a,b", "a b", "x\r\nSet-Cookie: y", "", "r" * 65, "semi;colon"])
def test_bad_roles_and_scopes_are_refused(store, bad):
    with pytest.raises(ValueError, match="invalid role"):
        store.add_user("alice", "hash", roles=["ok", bad])
    with pytest.raises(ValueError, match="invalid scope"):
        store.add_user("alice", "hash", scopes=[bad])
    assert store.get_user("alice") is None


def test_get_unknown_or_impossible_name(store):
    assert store.get_user("nobody") is None
    assert store.get_user("no body") is None


def test_list_users_sorted(store):
    for name in ("carol", "alice", "bob"):
        store.add_user(name, "hash")
    assert [user.username for user in store.list_users()] == ["alice", "bob", "carol"]


def test_disable_user(store):
    store.add_user("alice", "hash")
    store.disable_user("alice")
    assert store.get_user("alice").disabled is True
    with pytest.raises(UnknownUser):
        store.disable_user("nobody")


def test_set_password(store):
    store.add_user("alice", "old")
    store.set_password("alice", "new")
    assert store.get_user("alice").password_hash == "new"
    with pytest.raises(UnknownUser):
        store.set_password("nobody", "new")


def test_put_user_creates_then_resets(store):
    store.put_user("demo", "first", roles=["user"], scopes=["orders:read"])
    store.disable_user("demo")
    store.put_user("demo", "second", roles=["user"], scopes=["orders:read"])
    user = store.get_user("demo")
    assert (user.password_hash, user.roles, user.scope, user.disabled) == (
        "second",
        ("user",),
        "orders:read",
        False,
    )
    assert len(store.list_users()) == 1


def test_a_failed_write_leaves_nothing_behind(store):
    store.add_user("alice", "hash")
    with pytest.raises(UserExists):
        store.add_user("alice", "hash")
    # The store is still writable: the failed transaction was rolled back, not left open.
    store.add_user("bob", "hash")
    assert [user.username for user in store.list_users()] == ["alice", "bob"]


def test_logins_delete_expired_sessions_and_their_refresh_tokens_and_keep_live_ones(tmp_path, store):
    now = FakeClock()()
    store.add_user("alice", "hash")
    store.create_session("old", "alice", refresh_hash("o" * 43), expires_at=int(now) - 1)
    store.create_session("live", "alice", refresh_hash("l" * 43), expires_at=int(now) + 60)
    clock = FakeClock(now)
    sessions = Sessions(Settings(data_dir=str(tmp_path)), store=store, revocations=None, clock=clock)
    sessions.start("alice")
    assert store.session_of(refresh_hash("o" * 43)) is None
    assert store.session_of(refresh_hash("l" * 43)) == "live"
    # Left: the live session and the new login's (revoke_user_sessions counts the unrevoked rows).
    store.create_session("older", "alice", refresh_hash("p" * 43), expires_at=int(now) - 1)
    sessions.start("alice")
    assert store.session_of(refresh_hash("p" * 43)) == "older"
    clock.now += PURGE_INTERVAL_SECONDS
    sessions.start("alice")
    assert store.session_of(refresh_hash("p" * 43)) is None
    assert store.revoke_user_sessions("alice") == 4


@pytest.mark.integration
def test_postgresql_gets_the_password_from_auth_database_password_file(tmp_path, postgres_server):
    import psycopg

    # A role that must prove a password (SCRAM) even on this otherwise trusting test cluster.
    role, database = "jwtgate_scram", "jwtgate_scram"
    with psycopg.connect(postgres_server.url(), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database}")
        connection.execute(f"DROP ROLE IF EXISTS {role}")
        connection.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password-from-a-file'")
        connection.execute(f"CREATE DATABASE {database} OWNER {role}")
        hba = postgres_server.data / "pg_hba.conf"
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        connection.execute("SELECT pg_reload_conf()")
    url = f"postgresql://{role}@127.0.0.1:{postgres_server.port}/{database}"
    password = tmp_path / "postgres-password"
    password.write_text("right-password-from-a-file\n")
    environ = {"JWTGATE_DATA_DIR": str(tmp_path), "AUTH_DATABASE_URL": url}
    store = UserStore.open(Settings.from_env({**environ, "AUTH_DATABASE_PASSWORD_FILE": str(password)}),
                           upgrade=True)
    try:
        store.add_user("alice", "hash")
    finally:
        store.close()
    # Control: the same URL with no password, and with a wrong one, is refused.
    password.write_text("wrong-password\n")
    for settings in (Settings.from_env(environ),
                     Settings.from_env({**environ, "AUTH_DATABASE_PASSWORD_FILE": str(password)})):
        with pytest.raises(Exception, match="password|timeout|couldn't get a connection"):
            UserStore.open(settings, upgrade=True)
