"""Refresh rotation, reuse detection, logout, user revocation and key rotation in the auth API."""

import os
import threading

import pytest
from falcon import testing
from jose import jwt

from auth_api import passwords
from auth_api.app import create_app
from auth_api.config import Settings
from auth_api.keys import KeyRing, key_files, keys_dir, rotate, rotate_if_due
from auth_api.sessions import Sessions
from auth_api.store import UserStore
from jwtgate.settings import ConfigError


PASSWORD = "correct horse battery staple"


# Where the clock fixture (tests/unit/conftest.py) starts.
CLOCK_START = 1_800_000_000.2


@pytest.fixture
def settings(tmp_path, auth_database_url):
    # Every test here runs on SQLite and on PostgreSQL (tests/services.py).
    return Settings(data_dir=str(tmp_path), access_token_ttl_seconds=600, refresh_token_ttl_seconds=3600,
                    key_activation_delay_seconds=0, database_url=auth_database_url)


@pytest.fixture
def store(settings, clock):
    store = UserStore.open(settings, clock=clock, upgrade=True)
    store.add_user("alice", passwords.hash(PASSWORD), roles=["user"], scopes=["orders:read"])
    yield store
    store.close()


@pytest.fixture
def client(settings, store, revocations, clock):
    keyring = KeyRing.open(settings, clock=clock)
    return testing.TestClient(create_app(settings, store=store, keyring=keyring, revocations=revocations,
                                         clock=clock))


def login(client):
    response = client.simulate_post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    return response.json


def refresh(client, token):
    return client.simulate_post("/api/auth/refresh", json={"refresh_token": token})


def revoked(revocations):
    return {(entry.kind, entry.value) for entry in revocations.changes(0)[0]}


def claims_of(token):
    return jwt.get_unverified_claims(token)


def test_login_returns_a_refresh_token_for_a_new_session(client, settings):
    body = login(client)
    assert len(body["refresh_token"]) == 43
    assert body["refresh_expires_in"] == settings.refresh_token_ttl_seconds
    assert claims_of(body["access_token"])["sid"]
    assert login(client)["refresh_token"] != body["refresh_token"]


def test_refresh_token_is_stored_only_as_a_hash(client, settings, store):
    token = login(client)["refresh_token"]
    if store.path is not None:
        with open(os.path.join(settings.data_dir, "auth.db"), "rb") as database:
            assert token.encode() not in database.read()
    with store.database.connect() as connection:
        stored = [row[0] for row in connection.execute("SELECT token_hash FROM refresh_tokens").fetchall()]
    assert stored and token not in stored and all(len(value) == 64 for value in stored)


def test_refresh_rotates_both_tokens_in_the_same_session(client, clock):
    first = login(client)
    clock.tick(10)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200
    second = response.json
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["sid"] == claims_of(first["access_token"])["sid"]
    assert claims_of(second["access_token"])["iat"] == claims_of(first["access_token"])["iat"] + 10
    # The session's end is fixed at login: rotation does not extend it.
    assert second["refresh_expires_in"] == first["refresh_expires_in"] - 10
    assert refresh(client, second["refresh_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_session(client, revocations):
    first = login(client)
    second = refresh(client, first["refresh_token"]).json
    reuse = refresh(client, first["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json["error"] == "invalid_grant"
    assert ("sid", claims_of(first["access_token"])["sid"]) in revoked(revocations)
    # The thief's copy and the victim's newer token are both dead now.
    assert refresh(client, second["refresh_token"]).status_code == 401


def test_concurrent_refreshes_with_one_token_have_one_winner(client):
    token = login(client)["refresh_token"]
    barrier = threading.Barrier(8)
    statuses = []

    def attempt():
        barrier.wait()
        statuses.append(refresh(client, token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 7


@pytest.mark.parametrize("body", [{}, {"refresh_token": 5}, {"refresh_token": "x" * 43},
                                  {"refresh_token": "short"}, {"refresh_token": "é" * 43}])
def test_unknown_or_malformed_refresh_tokens_are_refused(client, body):
    response = client.simulate_post("/api/auth/refresh", json=body)
    assert response.status_code in (400, 401)
    assert response.json["error"] in ("invalid_request", "invalid_grant")


def test_access_token_is_not_a_refresh_token(client):
    response = refresh(client, login(client)["access_token"])
    assert response.status_code == 401
    assert response.json["error"] == "invalid_grant"


def test_expired_session_cannot_refresh(client, clock, settings):
    token = login(client)["refresh_token"]
    clock.tick(settings.refresh_token_ttl_seconds + 1)
    assert refresh(client, token).status_code == 401


def test_disabled_user_cannot_refresh(client, store):
    token = login(client)["refresh_token"]
    store.disable_user("alice")
    assert refresh(client, token).status_code == 401


def test_logout_revokes_the_token_and_its_session(client, revocations):
    body = login(client)
    response = client.simulate_post("/api/auth/logout", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 204
    claims = claims_of(body["access_token"])
    assert {("jti", claims["jti"]), ("sid", claims["sid"])} <= revoked(revocations)
    assert refresh(client, body["refresh_token"]).status_code == 401


def test_logout_with_a_refresh_token_of_another_session_ends_it_too(client, revocations):
    first, second = login(client), login(client)
    response = client.simulate_post("/api/auth/logout", json={"refresh_token": second["refresh_token"]},
                                    headers={"Authorization": f"Bearer {first['access_token']}"})
    assert response.status_code == 204
    assert ("sid", claims_of(second["access_token"])["sid"]) in revoked(revocations)


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc"])
def test_logout_needs_a_valid_access_token(client, revocations, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.simulate_post("/api/auth/logout", headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert revoked(revocations) == set()


def test_logout_refuses_a_refresh_token_as_bearer(client):
    body = login(client)
    response = client.simulate_post("/api/auth/logout", headers={"Authorization": f"Bearer {body['refresh_token']}"})
    assert response.status_code == 401


def test_revoke_user_ends_sessions_and_sets_a_cutoff(settings, store, revocations, clock):
    sessions = Sessions(settings, store=store, revocations=revocations, clock=clock)
    sessions.start("alice")
    sessions.start("alice")
    assert sessions.revoke_user("alice") == 2
    (entry,) = [entry for entry in revocations.changes(0)[0] if entry.kind == "sub"]
    assert entry.value == "alice"
    assert entry.cutoff == int(clock())
    assert entry.expires_at >= clock() + settings.access_token_ttl_seconds


def test_revocation_entries_expire_with_the_tokens(settings, store, revocations, clock):
    sessions = Sessions(settings, store=store, revocations=revocations, clock=clock)
    sessions.revoke_access_token("j1", int(clock()) + 60)
    clock.tick(60 + settings.revocation_margin_seconds + 1)
    sessions.revoke_access_token("j2", int(clock()) + 60)
    assert revoked(revocations) == {("jti", "j2")}


def test_rotated_key_is_published_before_it_signs(tmp_path, clock):
    directory = keys_dir(str(tmp_path))
    settings = Settings(data_dir=str(tmp_path), key_activation_delay_seconds=120)
    ring = KeyRing.open(settings, clock=clock)
    first = ring.active.kid
    new = rotate(directory, activation_delay=120, retention=1000, clock=clock)
    assert [key["kid"] for key in ring.jwks()["keys"]] == [new, first]
    assert ring.active.kid == first
    clock.tick(121)
    assert ring.active.kid == new


def test_old_keys_are_pruned_once_their_tokens_expired(tmp_path, clock):
    directory = keys_dir(str(tmp_path))
    KeyRing.open(Settings(data_dir=str(tmp_path)), clock=clock)
    rotate(directory, activation_delay=10, retention=100, clock=clock)
    clock.tick(50)
    rotate(directory, activation_delay=10, retention=100, clock=clock)
    first = key_files(directory)
    assert len(first) == 3
    clock.tick(70)
    rotate(directory, activation_delay=10, retention=100, clock=clock)
    # The first key's successor has been active for longer than the retention: it goes.
    assert key_files(directory)[:2] == first[1:]
    assert len(key_files(directory)) == 3


def test_rotation_on_schedule_happens_once_per_period(tmp_path, clock):
    directory = keys_dir(str(tmp_path))
    KeyRing.open(Settings(data_dir=str(tmp_path)), clock=clock)
    assert rotate_if_due(directory, every=100, activation_delay=0, retention=10, clock=clock) is None
    clock.tick(101)
    assert rotate_if_due(directory, every=100, activation_delay=0, retention=10, clock=clock) is not None
    assert rotate_if_due(directory, every=100, activation_delay=0, retention=10, clock=clock) is None
    assert len(key_files(directory)) == 2


def test_rotation_settings_are_checked():
    with pytest.raises(ConfigError, match="AUTH_KEY_ROTATION_SECONDS"):
        Settings.from_env({"AUTH_KEY_ROTATION_SECONDS": "60", "AUTH_KEY_ACTIVATION_DELAY_SECONDS": "120"})
