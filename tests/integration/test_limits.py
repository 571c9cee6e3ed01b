"""Abuse limits through the real Nginx: login rate per address, per-account lockout without user
enumeration, and the size limits docs/security.md documents, each at its boundary."""

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import start_stack
from tests.minting import RsaSigner, claims, rs256


PASSWORD = "a long and uncommon password for limits"
DENIED = {"error": "invalid_credentials", "message": "Invalid username or password"}
RATE_LIMITED = {"error": "rate_limited", "message": "Too many requests: try again later"}
# The documented limits (docs/security.md, "Limits").
MAX_TOKEN_BYTES = 8000
MAX_CLAIMS = 64
MAX_NAMES = 64
MAX_JSON_DEPTH = 10
MAX_LOGIN_BODY_BYTES = 4096
LOCKOUT_THRESHOLD = 5


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A stack of its own: these tests lock accounts and exhaust the login rate."""
    running = start_stack(tmp_path_factory, "limits")
    yield running
    running.close()


@pytest.fixture(scope="module")
def signer(limited):
    kid = limited.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    return RsaSigner.from_pem(limited.private_key_pem(), kid)


def add_user(stack, name):
    result = subprocess.run([sys.executable, "-m", "auth_api", "users", "add", name, "--password-stdin"],
                            env=stack.service_env(), input=PASSWORD, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def attempt(client, username, password):
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    return response.status_code, response.json(), response.headers.get("retry-after")


def test_five_failures_lock_a_name_whether_or_not_the_user_exists(limited):
    add_user(limited.stack, "lockme")
    for name in ("lockme", "nobody-by-that-name"):
        answers = [attempt(limited.client, name, "wrong password number x") for _ in range(LOCKOUT_THRESHOLD)]
        assert answers == [(401, DENIED, None)] * LOCKOUT_THRESHOLD, name
        # Locked now: even the right password is refused, with the same body and when to retry.
        status, body, retry_after = attempt(limited.client, name, PASSWORD)
        assert (status, body) == (401, DENIED), name
        assert 1 <= int(retry_after) <= 30, name


def test_a_successful_login_clears_the_failures(limited):
    add_user(limited.stack, "clearme")
    for _ in range(2):
        for _ in range(LOCKOUT_THRESHOLD - 1):
            assert attempt(limited.client, "clearme", "wrong password number y")[0] == 401
        assert limited.login("clearme", PASSWORD)


def test_lockout_of_one_name_leaves_others_alone(limited):
    # Locks the demo user for the rest of this module's stack: later tests mint their own tokens.
    for _ in range(LOCKOUT_THRESHOLD):
        attempt(limited.client, limited.username, "wrong password number z")
    assert attempt(limited.client, limited.username, limited.password)[2] is not None
    assert limited.login(limited.admin, limited.admin_password)


def _token_of_length_near(signer, issuer, target, *, above):
    """A valid token whose length is the closest reachable to target: <= it, or > it when `above`."""
    best = None
    for padding in range(target * 3 // 4 - 600, target):
        token = rs256(signer, claims(time.time(), iss=issuer, pad="x" * padding))
        if (len(token) > target) == above and (best is None or abs(len(token) - target) < abs(len(best) - target)):
            best = token
        if len(token) > target + 8:
            break
    return best


def _get(client, token):
    response = client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json().get("error")


def test_token_size_limit(limited, signer):
    at_most = _token_of_length_near(signer, limited.issuer, MAX_TOKEN_BYTES, above=False)
    over = _token_of_length_near(signer, limited.issuer, MAX_TOKEN_BYTES, above=True)
    assert MAX_TOKEN_BYTES - 3 <= len(at_most) <= MAX_TOKEN_BYTES < len(over) <= MAX_TOKEN_BYTES + 4
    assert _get(limited.client, at_most)[0] == 200
    assert _get(limited.client, over) == (401, "invalid_request")


def test_claim_count_limit(limited, signer):
    base = claims(time.time(), iss=limited.issuer)
    fill = lambda count: {**base, **{f"c{index}": 1 for index in range(count - len(base))}}  # noqa: E731
    assert _get(limited.client, rs256(signer, fill(MAX_CLAIMS)))[0] == 200
    assert _get(limited.client, rs256(signer, fill(MAX_CLAIMS + 1))) == (401, "invalid_claims")


def test_roles_count_limit(limited, signer):
    roles = [f"r{index}" for index in range(MAX_NAMES + 1)]
    mint = lambda **overrides: rs256(signer, claims(time.time(), iss=limited.issuer, **overrides))  # noqa: E731
    assert _get(limited.client, mint(roles=roles[:MAX_NAMES]))[0] == 200
    assert _get(limited.client, mint(roles=roles)) == (401, "invalid_claims")


def test_json_depth_limit_counts_the_claims_object(limited, signer):
    def nested(levels):
        value = []
        for _ in range(levels - 1):
            value = [value]
        return value

    # The claims object is level 1, so a claim may nest MAX_JSON_DEPTH - 1 levels.
    mint = lambda **overrides: rs256(signer, claims(time.time(), iss=limited.issuer, **overrides))  # noqa: E731
    assert _get(limited.client, mint(deep=nested(MAX_JSON_DEPTH - 1)))[0] == 200
    assert _get(limited.client, mint(deep=nested(MAX_JSON_DEPTH))) == (401, "malformed")
    # Brackets inside strings are not nesting.
    assert _get(limited.client, mint(text="[{" * 100))[0] == 200


def test_login_body_size_limit(limited):
    body = json.dumps({"username": "x", "password": ""}).encode()
    exact = body[:-2] + b"p" * (MAX_LOGIN_BODY_BYTES - len(body)) + body[-2:]
    assert len(exact) == MAX_LOGIN_BODY_BYTES
    headers = {"Content-Type": "application/json"}
    assert limited.client.post("/api/auth/login", content=exact, headers=headers).status_code == 401
    over = limited.client.post("/api/auth/login", content=exact + b" ", headers=headers)
    assert over.status_code == 413 and over.json()["error"] == "payload_too_large"


def _spam_until_429(client, path, limit=400):
    """Send fast 415s (no argon2) until Nginx answers 429; return that answer and how many were sent."""
    for sent in range(1, limit + 1):
        response = client.post(path, content=b"x", headers={"Content-Type": "text/plain"})
        if response.status_code == 429:
            return response, sent
        assert response.status_code == 415, response.text
    raise AssertionError(f"no 429 after {limit} requests to {path}")


def _wait_for_the_zone_to_refill(client):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # A burst's worth of slots back (20 at 10 a second), so the next test starts fresh.
        if all(client.post("/api/auth/refresh", json={}).status_code != 429 for _ in range(3)):
            time.sleep(2)
            return
        time.sleep(0.2)
    raise AssertionError("the login rate zone did not refill")


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/refresh"])
def test_credential_endpoints_are_rate_limited_per_address_with_json_429(limited, path):
    try:
        response, sent = _spam_until_429(limited.client, path)
        print(f"\n[{path}] first 429 after {sent} requests")
        assert response.json() == RATE_LIMITED
        assert response.headers["content-type"] == "application/json"
        assert response.headers["retry-after"] == "1"
        assert response.headers["x-content-type-options"] == "nosniff"
        # The zone is shared by login and refresh, and by nothing else.
        assert limited.client.post("/api/auth/login", json={}).status_code == 429
        assert limited.client.post("/api/auth/refresh", json={}).status_code == 429
        assert limited.client.post("/api/auth/logout").status_code == 401
        assert limited.client.get("/api/public/").status_code == 200
    finally:
        _wait_for_the_zone_to_refill(limited.client)
