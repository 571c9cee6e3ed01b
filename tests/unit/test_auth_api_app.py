"""The auth_api HTTP app through falcon.testing, with a tmp data dir and a fake clock."""

import dataclasses
import json
import logging
from pathlib import Path

import falcon
import pytest
from falcon import testing
from jose import jwk, jwt

from auth_api import passwords
from auth_api.app import create_app, serialize_error
from auth_api.config import Settings
from auth_api.keys import KeyRing
from auth_api.store import UserStore
from jwtgate.logs import JsonFormatter, fingerprint
from jwtgate.revocation import SqliteRevocationStore
from tests.dpop_support import DpopKey
from jwtgate.dpop import Nonces


LOGIN = "/api/auth/login"
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = passwords.hash(PASSWORD)
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}
# Falcon's TestClient sends its requests to this origin (AUTH_PUBLIC_ORIGINS of these tests).
SITE = "http://falconframework.org"
DENIED = {"error": "invalid_credentials", "message": "Invalid username or password"}


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    return KeyRing.open(Settings(data_dir=str(tmp_path_factory.mktemp("keys"))))


# Where the clock fixture (tests/unit/conftest.py) starts.
CLOCK_START = 1_700_000_000.6


@pytest.fixture
def settings(tmp_path):
    return Settings(
        data_dir=str(tmp_path), issuer="https://auth.test", audience="orders-api", access_token_ttl_seconds=600,
        public_origins=frozenset({SITE}),
    )


@pytest.fixture
def store(settings, clock):
    store = UserStore.open(settings, clock=clock)
    store.add_user("alice", PASSWORD_HASH, roles=["admin", "user"], scopes=["orders:read", "orders:write"])
    store.add_user("carol", PASSWORD_HASH)
    store.disable_user("carol")
    return store


def revocations_for(settings):
    store = SqliteRevocationStore(settings.revocation_db)
    store.create()
    return store


def make_client(settings, store, keyring, clock):
    return testing.TestClient(create_app(settings, store=store, keyring=keyring,
                                         revocations=revocations_for(settings), clock=clock))


@pytest.fixture
def client(settings, store, keyring, clock):
    return make_client(settings, store, keyring, clock)


def login(client, username="alice", password=PASSWORD, **kwargs):
    return client.simulate_post(LOGIN, json={"username": username, "password": password}, **kwargs)


def assert_json_error(response, status, code):
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json) == {"error", "message"}
    assert response.json["error"] == code
    assert isinstance(response.json["message"], str) and response.json["message"]


def verify_with_jwks(client, token, settings):
    header = jwt.get_unverified_header(token)
    keys = {key["kid"]: key for key in client.simulate_get("/.well-known/jwks.json").json["keys"]}
    return jwt.decode(
        token,
        jwk.construct(keys[header["kid"]], "RS256"),
        algorithms=["RS256"],
        audience=settings.audience,
        issuer=settings.issuer,
        # The fake clock is years behind the real one that jose checks exp against; exp is asserted below.
        options={"verify_exp": False},
    )


def test_login_issues_a_verifiable_access_token(client, settings, keyring, clock):
    response = login(client)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in", "token", "refresh_token", "refresh_expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["token"] == body["access_token"]

    token = body["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "at+jwt", "kid": keyring.active.kid}
    claims = verify_with_jwks(client, token, settings)
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "roles", "scope", "sid"}
    assert claims["iss"] == "https://auth.test"
    assert claims["aud"] == "orders-api"
    assert claims["sub"] == "alice"
    assert claims["iat"] == 1_700_000_000
    assert claims["exp"] == claims["iat"] + 600
    assert claims["roles"] == ["admin", "user"]
    assert claims["scope"] == "orders:read orders:write"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 22


def test_token_times_follow_the_clock(client, clock):
    first = jwt.get_unverified_claims(login(client).json["access_token"])
    clock.tick(125)
    second = jwt.get_unverified_claims(login(client).json["access_token"])
    assert second["iat"] - first["iat"] == 125
    assert second["exp"] == second["iat"] + 600
    assert second["jti"] != first["jti"]


def test_content_type_with_charset_is_accepted(client):
    response = client.simulate_post(
        LOGIN,
        body=json.dumps({"username": "alice", "password": PASSWORD}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "username, password",
    [("alice", "wrong password"), ("nobody", PASSWORD), ("carol", PASSWORD), ("no body", PASSWORD), ("alice", "")],
    ids=["wrong-password", "unknown-user", "disabled-user", "impossible-name", "empty-password"],
)
def test_every_denial_looks_the_same(client, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert response.json == DENIED
    assert response.headers["content-type"] == "application/json"
    assert "cache-control" not in response.headers
    assert "access_token" not in response.text


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("nobody", PASSWORD), ("carol", PASSWORD)])
def test_every_denial_costs_one_hash_verification(client, monkeypatch, username, password):
    # Similar timing: an unknown or disabled user still pays for exactly one argon2 verification.
    calls = []
    real_verify = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda *args: calls.append(args) or real_verify(*args))
    assert login(client, username, password).status_code == 401
    assert len(calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"\xff\xfe{}",
        b"[]",
        b'"alice"',
        b"null",
        b"42",
        b"{}",
        b'{"username": "alice"}',
        b'{"password": "x"}',
        b'{"username": 1, "password": "x"}',
        b'{"username": "alice", "password": null}',
        b'{"username": ["alice"], "password": "x"}',
        b'{"username": "alice", "password": {"$ne": ""}}',
        b'{"username": NaN, "password": "x"}',
        b"[" * 2000 + b"]" * 2000,
        b'{"username": "alice", "password": "' + b"x" * 10,
    ],
    ids=lambda body: body[:24].decode("latin-1"),
)
def test_malformed_bodies_are_400_json(client, body):
    response = client.simulate_post(LOGIN, body=body, headers={"Content-Type": "application/json"})
    assert_json_error(response, 400, "invalid_request")


def test_huge_body_is_413_json(client, settings):
    body = json.dumps({"username": "alice", "password": "x" * settings.max_body_bytes})
    response = client.simulate_post(LOGIN, body=body, headers={"Content-Type": "application/json"})
    assert_json_error(response, 413, "payload_too_large")


def test_huge_chunked_body_is_413_json(client, settings):
    body = json.dumps({"username": "alice", "password": "x" * settings.max_body_bytes})
    response = client.simulate_post(
        LOGIN, body=body, headers={"Content-Type": "application/json"}, extras={"CONTENT_LENGTH": ""}
    )
    assert_json_error(response, 413, "payload_too_large")


def test_small_chunked_body_logs_in(client):
    body = json.dumps({"username": "alice", "password": PASSWORD})
    response = client.simulate_post(
        LOGIN, body=body, headers={"Content-Type": "application/json"}, extras={"CONTENT_LENGTH": ""}
    )
    assert response.status_code == 200


def test_body_at_the_limit_is_read(client, settings):
    padding = settings.max_body_bytes - len(json.dumps({"username": "alice", "password": PASSWORD, "p": ""}))
    body = json.dumps({"username": "alice", "password": PASSWORD, "p": "x" * padding})
    assert len(body) == settings.max_body_bytes
    response = client.simulate_post(LOGIN, body=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200


def test_falcons_own_errors_are_json_without_library_text():
    resp = falcon.Response()
    error = falcon.HTTPInvalidHeader("The value provided for the header is invalid", "Content-Length")
    serialize_error(testing.create_req(), resp, error)
    assert json.loads(resp.data) == {"error": "invalid_request", "message": "Bad Request"}
    assert resp.content_type == "application/json"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonp"])
def test_wrong_content_type_is_415_json(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"username": "alice", "password": PASSWORD})
    assert_json_error(client.simulate_post(LOGIN, body=body, headers=headers), 415, "unsupported_media_type")


def test_demo_get_is_refused_when_demo_login_is_off(client):
    response = client.simulate_get(LOGIN)
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" not in response.headers["allow"]
    assert "token" not in response.text


def test_demo_get_issues_the_demo_users_token_when_on(settings, store, keyring, clock):
    store.put_user("demo", PASSWORD_HASH, roles=["user"], scopes=["orders:read"])
    demo_settings = dataclasses.replace(settings, demo_login=True)
    client = make_client(demo_settings, store, keyring, clock)
    response = client.simulate_get(LOGIN)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json["token"] == response.json["access_token"]
    claims = verify_with_jwks(client, response.json["access_token"], demo_settings)
    assert (claims["sub"], claims["roles"], claims["scope"]) == ("demo", ["user"], "orders:read")
    assert login(client).status_code == 200


def test_demo_get_without_the_demo_user_is_503_json(settings, store, keyring, clock):
    demo_settings = dataclasses.replace(settings, demo_login=True, demo_user="guest")
    response = make_client(demo_settings, store, keyring, clock).simulate_get(LOGIN)
    assert_json_error(response, 503, "demo_unavailable")
    assert "token" not in response.json


def test_jwks(client, keyring):
    response = client.simulate_get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.json == keyring.jwks()
    (key,) = response.json["keys"]
    assert key["kid"] == keyring.active.kid
    assert not PRIVATE_MEMBERS & set(key)


def test_hs256_mode(settings, store, clock):
    secret = b"s" * 48
    hs_settings = dataclasses.replace(settings, hs256_secret=secret)
    client = make_client(hs_settings, store, KeyRing.open(hs_settings), clock)
    assert client.simulate_get("/.well-known/jwks.json").json == {"keys": []}
    token = login(client).json["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    claims = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience="orders-api",
        issuer="https://auth.test",
        options={"verify_exp": False},
    )
    assert claims["sub"] == "alice"
    assert secret.decode() not in client.simulate_get("/.well-known/jwks.json").text


def test_healthz(client):
    response = client.simulate_get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_unknown_route_is_404_json(client):
    assert_json_error(client.simulate_get("/nope"), 404, "not_found")


def test_errors_are_json_whatever_the_client_accepts(client):
    response = client.simulate_get("/nope", headers={"Accept": "text/html"})
    assert_json_error(response, 404, "not_found")


def test_other_methods_on_login_are_405_json(client):
    assert_json_error(client.simulate_delete(LOGIN), 405, "method_not_allowed")


class ExplodingStore:
    def get_user(self, username):
        raise RuntimeError("database password is hunter2")


def test_unexpected_exception_is_500_json_without_details(settings, keyring, clock, caplog):
    client = make_client(settings, ExplodingStore(), keyring, clock)
    with caplog.at_level(logging.ERROR, logger="auth_api"):
        response = login(client)
    assert_json_error(response, 500, "internal_error")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    formatted = [JsonFormatter("auth_api").format(record) for record in caplog.records]
    assert formatted and all("hunter2" not in line for line in formatted)
    assert json.loads(formatted[-1])["error"] == "RuntimeError"


def test_logins_are_logged_without_secrets(client, caplog):
    with caplog.at_level(logging.INFO, logger="auth_api"):
        token = login(client).json["access_token"]
        login(client, password="wrong password")
    records = [record for record in caplog.records if record.getMessage() == "login"]
    assert [(record.user, record.result) for record in records] == [("alice", "ok"), ("alice", "denied")]
    assert records[0].token_fp == fingerprint(token)
    lines = [JsonFormatter("auth_api").format(record) for record in caplog.records]
    for line in lines:
        assert PASSWORD not in line and "wrong password" not in line and token not in line


# DPoP nonces at the token endpoints (RFC 9449 section 8).

@pytest.fixture
def nonce_client(settings, store, keyring, clock):
    return make_client(dataclasses.replace(settings, dpop_nonce_seconds=30), store, keyring, clock)


def dpop_login(client, key, clock, **proof_options):
    url = SITE + LOGIN
    return login(client, headers={"DPoP": key.proof("POST", url, iat=int(clock()), **proof_options)})


def test_a_token_request_without_our_nonce_gets_one(nonce_client, settings, clock):
    key = DpopKey.generate("ES256")
    refused = dpop_login(nonce_client, key, clock, jti="first")
    assert_json_error(refused, 400, "use_dpop_nonce")
    nonce = refused.headers["DPoP-Nonce"]
    # The same secret for every worker: the key file in the data directory, 0600.
    key_file = Path(settings.data_dir) / "dpop-nonce-auth.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert nonce == Nonces(key_file.read_bytes(), 30, clock).current()
    # The refused proof used up nothing: its jti passes with the nonce, and the answer names the next one.
    issued = dpop_login(nonce_client, key, clock, jti="first", nonce=nonce)
    assert issued.status_code == 200, issued.text
    assert issued.json["token_type"] == "DPoP" and issued.headers["DPoP-Nonce"] == nonce
    refresh_url = SITE + "/api/auth/refresh"
    for proof_nonce, status in ((None, 400), (Nonces(b"x" * 32, 30, clock).current(), 400), (nonce, 200)):
        response = nonce_client.simulate_post("/api/auth/refresh", json={"refresh_token": issued.json["refresh_token"]},
                                              headers={"DPoP": key.proof("POST", refresh_url, iat=int(clock()),
                                                                        nonce=proof_nonce)})
        assert response.status_code == status, response.text
    clock.tick(90)
    assert_json_error(dpop_login(nonce_client, key, clock, nonce=nonce), 400, "use_dpop_nonce")


def test_nonces_are_asked_for_only_when_configured_and_never_without_a_proof(client, nonce_client, clock):
    key = DpopKey.generate("ES256")
    plain = dpop_login(client, key, clock)
    assert plain.status_code == 200 and "DPoP-Nonce" not in plain.headers
    bearer = login(nonce_client)
    assert bearer.status_code == 200 and bearer.json["token_type"] == "Bearer" and "DPoP-Nonce" not in bearer.headers
    # A bad proof is invalid first: no nonce is handed out for it.
    bad = login(nonce_client, headers={"DPoP": key.proof("GET", SITE + LOGIN)})
    assert_json_error(bad, 400, "invalid_dpop_proof")
    assert "DPoP-Nonce" not in bad.headers


# DPoP-bound sessions at logout and refresh (RFC 9449 sections 5 and 7): whichever credential names them.

LOGOUT, REFRESH = "/api/auth/logout", "/api/auth/refresh"
SAME_SITE = {"X-Jwtgate-Self-Origin": SITE, "Origin": SITE}


def assert_dpop_refused(response, error):
    assert response.status_code == 401, response.text
    assert response.json["error"] == error
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="jwtgate", error="invalid_token"') and 'algs="' in challenge, challenge


@pytest.fixture
def bound_client(settings, store, keyring, revocations, clock):
    return testing.TestClient(create_app(settings, store=store, keyring=keyring, revocations=revocations, clock=clock))


def revoked(revocations):
    return {(entry.kind, entry.value) for entry in revocations.changes(0)[0]}


def bound_refresh(client, key, clock, token):
    return client.simulate_post(REFRESH, json={"refresh_token": token},
                                headers={"DPoP": key.proof("POST", SITE + REFRESH, iat=int(clock()))})


def test_the_key_holder_logs_out_a_bound_session_with_its_refresh_cookie_and_a_proof(bound_client, revocations, clock):
    key = DpopKey.generate("ES256")
    victim = dpop_login(bound_client, key, clock).json
    proof = key.proof("POST", SITE + LOGOUT, iat=int(clock()))
    response = bound_client.simulate_post(LOGOUT, cookies={"jwtgate_refresh": victim["refresh_token"]},
                                          headers={**SAME_SITE, "DPoP": proof})
    assert response.status_code == 204, response.text
    assert ("sid", jwt.get_unverified_claims(victim["access_token"])["sid"]) in revoked(revocations)
    assert bound_refresh(bound_client, key, clock, victim["refresh_token"]).status_code == 401


@pytest.mark.parametrize("path", ["access cookie", "refresh cookie", "refresh token in the body"])
def test_a_bound_session_is_not_logged_out_without_its_key(bound_client, revocations, clock, path):
    key, thief = DpopKey.generate("ES256"), DpopKey.generate("ES256")
    victim = dpop_login(bound_client, key, clock).json
    own = login(bound_client).json["access_token"]
    cookies, headers, body, ath = {
        "access cookie": ({"jwtgate_access": victim["access_token"]}, SAME_SITE, None, victim["access_token"]),
        "refresh cookie": ({"jwtgate_refresh": victim["refresh_token"]}, SAME_SITE, None, None),
        "refresh token in the body": ({}, {"Authorization": f"Bearer {own}"},
                                      {"refresh_token": victim["refresh_token"]}, own),
    }[path]
    for proof in (None, thief.proof("POST", SITE + LOGOUT, ath, iat=int(clock()))):
        response = bound_client.simulate_post(LOGOUT, cookies=cookies, json=body,
                                              headers={**headers, **({"DPoP": proof} if proof else {})})
        assert_dpop_refused(response, "invalid_token")
    # Refused before anything was revoked: nothing reached the validators, and the session still refreshes.
    assert revoked(revocations) == set()
    assert bound_refresh(bound_client, key, clock, victim["refresh_token"]).status_code == 200


@pytest.mark.parametrize("cookie", [False, True])
def test_a_bound_refresh_token_without_its_key_is_refused_with_a_dpop_challenge(client, clock, cookie):
    key = DpopKey.generate("ES256")
    token = dpop_login(client, key, clock).json["refresh_token"]
    if cookie:
        response = client.simulate_post(REFRESH, json={}, cookies={"jwtgate_refresh": token}, headers=SAME_SITE)
    else:
        response = client.simulate_post(REFRESH, json={"refresh_token": token})
    assert_dpop_refused(response, "invalid_grant")
    assert bound_refresh(client, key, clock, token).status_code == 200


# DPoP htu (RFC 9449 section 4.3): the auth API's own public origins, never the client's Host.

def test_a_proof_made_for_another_server_is_refused_at_login_and_refresh(client, clock):
    key = DpopKey.generate("ES256")
    elsewhere = {"Host": "rs-a.example", "X-Jwtgate-Self-Origin": "http://rs-a.example"}
    refused = login(client, headers={**elsewhere, "DPoP": key.proof("POST", "http://rs-a.example" + LOGIN,
                                                                    iat=int(clock()))})
    assert_json_error(refused, 400, "invalid_dpop_proof")
    issued = dpop_login(client, key, clock)
    assert issued.status_code == 200 and issued.json["token_type"] == "DPoP", issued.text
    # A bound refresh token with a proof its owner made for another server.
    stolen = client.simulate_post("/api/auth/refresh", json={"refresh_token": issued.json["refresh_token"]},
                                  headers={**elsewhere, "DPoP": key.proof("POST", "http://rs-a.example/api/auth/refresh",
                                                                          iat=int(clock()))})
    assert_json_error(stolen, 400, "invalid_dpop_proof")


def test_without_public_origins_every_proof_is_refused(settings, store, keyring, clock):
    client = make_client(dataclasses.replace(settings, public_origins=frozenset()), store, keyring, clock)
    assert_json_error(dpop_login(client, DpopKey.generate("ES256"), clock), 400, "invalid_dpop_proof")
    assert login(client).json["token_type"] == "Bearer"
