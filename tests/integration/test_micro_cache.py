"""The optional Nginx micro-cache (JWTGATE_MICRO_CACHE=1) through the real stack."""

import json
import os
import signal
import time

import httpx

import pytest

from jwtgate.logs import fingerprint
from tests.conftest import start_stack
from launcher.stack import NGINX_DIR
from tests.minting import RsaSigner, claims, rs256
from tests.services import free_port


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    # Debug logging makes the validator log every allowed verdict, so the tests can
    # count which requests reached it; leeway 0 so exp is the exact end.
    running = start_stack(tmp_path_factory, "micro-cache", JWTGATE_MICRO_CACHE="1", VALIDATOR_LOG_LEVEL="debug",
                          VALIDATOR_LEEWAY_SECONDS="0", VALIDATOR_VERDICT_MAX_AGE_SECONDS="10")
    kid = running.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    running.signer = RsaSigner.from_pem(running.private_key_pem(), kid)
    yield running
    running.close()


def checks(running, token):
    """How many times the validator itself judged `token` (cache hits never reach it)."""
    count = 0
    for line in running.stack.log_path("validator").read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("token_fp") == fingerprint(token) and record.get("event", "").startswith("verify "):
            count += 1
    return count


def get(running, path, token):
    return running.client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_each_cached_verdict_restores_its_own_identity(cached):
    now = time.time()
    alice = rs256(cached.signer, claims(now, iss=cached.issuer, sub="alice", roles=["user"], scope="orders:read"))
    bob = rs256(cached.signer, claims(now, iss=cached.issuer, sub="bob", roles=["admin", "support"],
                                      scope="orders:write"))
    for _ in range(4):
        for token, user, roles, scopes in ((alice, "alice", ["user"], ["orders:read"]),
                                           (bob, "bob", ["admin", "support"], ["orders:write"])):
            response = get(cached, "/api/protected/", token)
            assert response.status_code == 200
            body = response.json()
            assert (body["userId"], body["roles"], body["scopes"]) == (user, roles, scopes)
    # Four requests each, but the validator saw fewer: the rest were cache hits,
    # and they still carried the right user.
    assert 1 <= checks(cached, alice) < 4
    assert 1 <= checks(cached, bob) < 4
    assert [user for _, path, user in cached.backend_hits() if path == "/api/protected/"][-8:] == ["alice", "bob"] * 4


def test_a_cached_allow_does_not_open_a_location_with_requirements(cached):
    now = time.time()
    token = rs256(cached.signer, claims(now, iss=cached.issuer, sub="carol", roles=["user"]))
    assert get(cached, "/api/protected/", token).status_code == 200
    for _ in range(3):
        assert get(cached, "/api/admin/", token).status_code == 403
    # The 200 of /api/protected/ was not reused, and the 403s were not stored.
    assert checks(cached, token) == 4


def test_refusals_are_not_cached(cached):
    now = time.time()
    good = rs256(cached.signer, claims(now, iss=cached.issuer, sub="dave"))
    other = rs256(cached.signer, claims(now, iss=cached.issuer, sub="mallory"))
    forged = good[: good.rindex(".")] + other[other.rindex("."):]
    for _ in range(3):
        response = get(cached, "/api/protected/", forged)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
    assert checks(cached, forged) == 3


def test_a_cached_token_is_refused_after_its_exp(cached):
    now = time.time()
    token = rs256(cached.signer, claims(now, iss=cached.issuer, sub="erin", iat=int(now) - 60, exp=int(now) + 5))
    first, second = get(cached, "/api/protected/", token), get(cached, "/api/protected/", token)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["userId"] == "erin"
    assert checks(cached, token) == 1, "the second answer should have come from the micro-cache"
    time.sleep(max(0.0, int(now) + 5 - time.time()) + 0.2)
    response = get(cached, "/api/protected/", token)
    assert response.status_code == 401
    assert response.json()["error"] == "expired"


def test_cookie_verdicts_are_never_cached(cached):
    # Without an Authorization header every cookie request has the same cache key: nothing may be stored.
    now = time.time()
    frank = rs256(cached.signer, claims(now, iss=cached.issuer, sub="frank"))
    grace = rs256(cached.signer, claims(now, iss=cached.issuer, sub="grace"))
    for _ in range(2):
        for token, user in ((frank, "frank"), (grace, "grace")):
            response = cached.client.get("/api/protected/", headers={"Cookie": f"jwtgate_access={token}"})
            assert response.status_code == 200
            assert response.json()["userId"] == user
    assert (checks(cached, frank), checks(cached, grace)) == (2, 2)
    assert cached.client.get("/api/protected/").status_code == 401


def test_a_revocation_takes_effect_within_max_age(cached):
    max_age = 10    # the fixture's VALIDATOR_VERDICT_MAX_AGE_SECONDS
    token = cached.login()
    # Store the verdict just after a second begins: Nginx compares whole seconds, so that is when an
    # entry would outlive its max-age the longest.
    deadline = time.monotonic() + 2
    while time.time() % 1 > 0.05:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert get(cached, "/api/protected/", token).status_code == 200
    assert get(cached, "/api/protected/", token).status_code == 200
    assert checks(cached, token) == 1, "the second answer should have come from the micro-cache"
    logout = cached.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204
    revoked = last_allowed = time.monotonic()
    while True:
        # When the last request let through was sent, not when its answer came: a slow answer on a
        # loaded machine says nothing about how long the micro-cache kept the verdict.
        sent = time.monotonic()
        if (status := get(cached, "/api/protected/", token).status_code) != 200:
            break
        assert sent - revoked < max_age + 3, "the revoked token still passes"
        last_allowed = sent
        time.sleep(0.05)
    assert status == 401
    # A correctness bound (README: a revoked token passes for at most max-age), with room for the poll.
    assert last_allowed - revoked <= max_age + 0.5


def test_a_server_that_skips_the_micro_cache_asks_the_validator_every_time(cached):
    # A second server in the same Nginx, as make bench's server without the cache: every check reaches the validator.
    port, snippets = free_port(), NGINX_DIR / "snippets"
    (cached.stack.nginx_prefix / "conf.d" / "skip.conf").write_text(
        f"server {{\n    listen 127.0.0.1:{port};\n    set $jwtgate_micro_cache_skip 1;\n"
        f"    include {snippets}/jwtgate-server.conf;\n    location /api/protected/ {{\n"
        f"        include {snippets}/jwtgate-protect.conf;\n        proxy_pass http://jwtgate_backend/api/protected/;\n"
        "    }\n}\n")
    os.kill(cached.stack.processes["nginx"].pid, signal.SIGHUP)
    token = rs256(cached.signer, claims(time.time(), iss=cached.issuer, sub="carol"))
    url, headers = f"http://127.0.0.1:{port}/api/protected/", {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 10
    while True:
        try:
            response = httpx.get(url, headers=headers)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the reloaded Nginx never listened"
            time.sleep(0.1)
    assert response.status_code == 200
    for _ in range(3):
        assert httpx.get(url, headers=headers).status_code == 200
    assert checks(cached, token) == 4
    # The control: the gateway's own server, which does not skip it, answers the same token from the cache.
    for _ in range(4):
        assert get(cached, "/api/protected/", token).status_code == 200
    assert checks(cached, token) < 8
