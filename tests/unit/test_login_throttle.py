"""Per-account login backoff: the policy, both counter stores, and the login resource using them."""

import threading

import pytest
from falcon import testing
from prometheus_client import REGISTRY

from auth_api import passwords
from auth_api.app import create_app
from auth_api.config import Settings
from auth_api.database import SqliteDatabase
from auth_api.keys import KeyRing
from auth_api.limits import (
    LockoutPolicy,
    LoginThrottle,
    MemoryFailureCounters,
    SqlFailureCounters,
    account_key,
)
from auth_api.store import UserStore
from jwtgate.revocation import SqliteRevocationStore
from jwtgate.settings import ConfigError


PASSWORD = "correct horse battery staple"
DENIED = {"error": "invalid_credentials", "message": "Invalid username or password"}
POLICY = LockoutPolicy(threshold=5, base_seconds=30, max_seconds=900)


def test_lock_grows_from_the_threshold_and_stops_at_the_maximum():
    assert [POLICY.lock_seconds(n) for n in range(1, 12)] == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert POLICY.lock_seconds(10_000) == 900
    assert LockoutPolicy(threshold=0).lock_seconds(50) == 0


@pytest.fixture(params=["sqlite", "memory"])
def counters(request, tmp_path):
    if request.param == "memory":
        return MemoryFailureCounters()
    UserStore.open(Settings(data_dir=str(tmp_path)))
    return SqlFailureCounters(SqliteDatabase(tmp_path / "auth.db"))


def test_counters_lock_after_the_threshold_and_clear(counters):
    now = 1_800_000_000
    assert [counters.charge("k", now, POLICY) for _ in range(5)] == [0] * 5
    assert counters.charge("k", now, POLICY) == 30
    assert counters.charge("k", now + 29, POLICY) == 1
    assert counters.failures("k") == 5   # charging a locked key changes nothing
    # The lock ends; the next attempt counts as the sixth, which locks twice as long.
    assert counters.charge("k", now + 30, POLICY) == 0
    assert counters.charge("k", now + 31, POLICY) == 59
    assert counters.charge("other", now, POLICY) == 0
    counters.clear("k")
    assert counters.failures("k") == 0
    assert counters.charge("k", now + 31, POLICY) == 0


def test_counters_forget_old_failures(counters):
    now = 1_800_000_000
    for _ in range(4):
        counters.charge("k", now, POLICY)
    later = now + POLICY.forget_after_seconds
    assert counters.charge("k", later, POLICY) == 0
    assert counters.failures("k") == 1


def test_concurrent_attempts_cannot_outrun_the_count(tmp_path):
    UserStore.open(Settings(data_dir=str(tmp_path)))
    counters = SqlFailureCounters(SqliteDatabase(tmp_path / "auth.db"))
    throttle = LoginThrottle(counters, POLICY, clock=lambda: 1_800_000_000)
    results, start = [], threading.Barrier(20)

    def guess():
        start.wait()
        results.append(throttle.attempt("alice"))

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results).count(0) == POLICY.threshold


def test_names_are_stored_as_digests_only(tmp_path):
    UserStore.open(Settings(data_dir=str(tmp_path)))
    counters = SqlFailureCounters(SqliteDatabase(tmp_path / "auth.db"))
    LoginThrottle(counters, POLICY).attempt("my secret password typed as a name")
    assert b"my secret password" not in (tmp_path / "auth.db").read_bytes()
    assert counters.failures(account_key("my secret password typed as a name")) == 1
    # A lone surrogate (valid in JSON, not in UTF-8) is a name like any other.
    assert LoginThrottle(counters, POLICY).attempt("\ud800") == 0


def test_lockout_settings(tmp_path):
    settings = Settings.from_env({"JWTGATE_DATA_DIR": str(tmp_path)})
    assert (settings.lockout_threshold, settings.lockout_base_seconds, settings.lockout_max_seconds) == (5, 30, 900)
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"JWTGATE_DATA_DIR": str(tmp_path), "AUTH_LOCKOUT_THRESHOLD": "-1",
                           "AUTH_LOCKOUT_BASE_SECONDS": "600", "AUTH_LOCKOUT_MAX_SECONDS": "60"})
    assert {name for name, _ in error.value.problems} == {"AUTH_LOCKOUT_THRESHOLD", "AUTH_LOCKOUT_MAX_SECONDS"}


# --- through the login resource ---------------------------------------------------------


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    return KeyRing.open(Settings(data_dir=str(tmp_path_factory.mktemp("keys"))))


@pytest.fixture
def client(tmp_path, keyring, clock):
    settings = Settings(data_dir=str(tmp_path))
    store = UserStore.open(settings, clock=clock)
    store.add_user("alice", passwords.hash(PASSWORD))
    revocations = SqliteRevocationStore(settings.revocation_db)
    revocations.create()
    throttle = LoginThrottle(SqlFailureCounters(store.database), LockoutPolicy.from_settings(settings), clock)
    return testing.TestClient(create_app(settings, store=store, keyring=keyring, revocations=revocations,
                                         clock=clock, throttle=throttle))


def login(client, username, password):
    response = client.simulate_post("/api/auth/login", json={"username": username, "password": password})
    return response.status_code, response.json, response.headers.get("retry-after")


def logins(outcome):
    return REGISTRY.get_sample_value("auth_api_logins_total", {"outcome": outcome}) or 0.0


def test_known_and_unknown_names_lock_alike(client):
    for name in ("alice", "mallory"):
        assert [login(client, name, "wrong") for _ in range(5)] == [(401, DENIED, None)] * 5
        assert login(client, name, PASSWORD) == (401, DENIED, "30")


def test_a_locked_name_costs_no_hash_verification(client, monkeypatch):
    for _ in range(5):
        login(client, "alice", "wrong")
        login(client, "nobody", "wrong")
    calls = []
    monkeypatch.setattr(passwords, "verify", lambda *args: calls.append(args) or True)
    monkeypatch.setattr(passwords, "verify_dummy", lambda *args: calls.append(args) or False)
    locked = logins("locked")
    assert login(client, "alice", PASSWORD)[0] == 401
    assert login(client, "nobody", PASSWORD)[0] == 401
    assert calls == []
    assert logins("locked") == locked + 2


def test_the_lock_ends_and_the_next_failure_locks_longer(client, clock):
    for _ in range(5):
        login(client, "alice", "wrong")
    clock.tick(30)
    assert login(client, "alice", "wrong") == (401, DENIED, None)
    assert login(client, "alice", PASSWORD) == (401, DENIED, "60")
    clock.tick(60)
    assert login(client, "alice", PASSWORD)[0] == 200


def test_success_clears_and_counts_by_outcome(client):
    before = {outcome: logins(outcome) for outcome in ("ok", "wrong_password", "unknown_user")}
    for _ in range(4):
        login(client, "alice", "wrong")
    assert login(client, "alice", PASSWORD)[0] == 200
    for _ in range(4):
        login(client, "alice", "wrong")
    assert login(client, "alice", PASSWORD)[0] == 200
    login(client, "nobody", "wrong")
    assert logins("ok") - before["ok"] == 2
    assert logins("wrong_password") - before["wrong_password"] == 8
    assert logins("unknown_user") - before["unknown_user"] == 1
