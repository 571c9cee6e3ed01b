"""DPoP (RFC 9449) through the real Nginx: bound tokens from the auth API, proofs checked by the validator."""

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_stack
from tests.dpop_support import DpopKey, b64url, hmac_signed, unsigned
from jwtgate.dpop import Nonces


PATH = "/api/protected/"
ALGS = 'algs="ES256 RS256"'


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory, "dpop", VALIDATOR_WORKERS="2")
    yield running
    running.close()


@pytest.fixture(scope="module")
def key():
    return DpopKey.generate("ES256")


def claims_of(token):
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def dpop_login(stack, key):
    url = f"{stack.url}/api/auth/login"
    response = stack.client.post("/api/auth/login", json={"username": stack.username, "password": stack.password},
                                 headers={"DPoP": key.proof("POST", url)})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def tokens(stack, key):
    return dpop_login(stack, key)


def call(stack, token, proof=None, *, scheme="DPoP", method="GET", path=PATH):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return stack.client.request(method, path, headers=headers)


def assert_refused(stack, response, reason, error="invalid_dpop_proof"):
    assert response.status_code == 401, response.text
    assert response.json()["error"] == reason
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'DPoP realm="jwtgate", error="{error}"'), challenge
    assert challenge.endswith(ALGS), challenge


def test_login_with_a_proof_binds_the_token(tokens, key):
    assert tokens["token_type"] == "DPoP"
    assert claims_of(tokens["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_valid_proofs_pass(stack, tokens, key):
    token = tokens["access_token"]
    before = len(stack.backend_hits())
    for _ in range(3):
        response = call(stack, token, key.proof("GET", stack.url + PATH, token))
        assert response.status_code == 200, response.text
        assert response.json()["userId"] == stack.username
    # The query is no part of htu (RFC 9449 section 4.3).
    response = call(stack, token, key.proof("GET", stack.url + PATH, token), path=PATH + "?page=2")
    assert response.status_code == 200, response.text
    assert len(stack.backend_hits()) == before + 4


def test_rsa_key_too(stack):
    rsa_key = DpopKey.generate("RS256")
    token = dpop_login(stack, rsa_key)["access_token"]
    assert call(stack, token, rsa_key.proof("GET", stack.url + PATH, token)).status_code == 200


def test_refusals_never_reach_the_backend(stack, tokens, key):
    token, url = tokens["access_token"], stack.url + PATH
    now = int(time.time())
    thief = DpopKey.generate("ES256")
    numbers = key.private_key.private_numbers()
    with_private = {**key.jwk, "d": b64url(numbers.private_value.to_bytes(32, "big"))}
    good_claims = {"jti": "x", "htm": "GET", "htu": url, "iat": now,
                   "ath": b64url(hashlib.sha256(token.encode()).digest())}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk}
    replayed = key.proof("GET", url, token)
    assert call(stack, token, replayed).status_code == 200
    before = len(stack.backend_hits())
    cases = {
        "replayed": (replayed, "dpop_replayed"),
        "wrong method": (key.proof("POST", url, token), "invalid_dpop_proof"),
        "wrong uri": (key.proof("GET", stack.url + "/api/admin/", token), "invalid_dpop_proof"),
        "wrong host": (key.proof("GET", url.replace("127.0.0.1", "localhost"), token), "invalid_dpop_proof"),
        "stale iat": (key.proof("GET", url, token, iat=now - 120), "invalid_dpop_proof"),
        "future iat": (key.proof("GET", url, token, iat=now + 120), "invalid_dpop_proof"),
        "missing ath": (key.proof("GET", url), "invalid_dpop_proof"),
        "ath of another token": (key.proof("GET", url, token[:-2] + "xx"), "invalid_dpop_proof"),
        "signed by another key": (thief.sign(header, good_claims), "invalid_dpop_proof"),
        "alg none": (unsigned({**header, "alg": "none"}, good_claims, b"sig"), "invalid_dpop_proof"),
        "alg none, empty signature": (unsigned({**header, "alg": "none"}, good_claims), "invalid_dpop_proof"),
        "hmac": (hmac_signed({**header, "alg": "HS256"}, good_claims, json.dumps(key.jwk).encode()),
                 "invalid_dpop_proof"),
        "private key inside": (key.sign({**header, "jwk": with_private}, {**good_claims, "jti": "y"}),
                               "invalid_dpop_proof"),
        "thief's own valid proof": (thief.proof("GET", url, token), "invalid_dpop_proof"),
        "no proof": (None, "invalid_dpop_proof"),
        "garbage": ("not a proof", "invalid_dpop_proof"),
        "non-ascii": ("ey\u00e9.x.y".encode("utf-8"), "invalid_dpop_proof"),
    }
    for name, (proof, reason) in cases.items():
        response = call(stack, token, proof)
        assert response.status_code == 401, name
        assert_refused(stack, response, reason)
    assert len(stack.backend_hits()) == before


def test_two_dpop_headers_are_refused(stack, tokens, key):
    token, url = tokens["access_token"], stack.url + PATH
    # Nginx 1.22 passes the first header only, 1.23+ both joined: refused either way.
    headers = [("Authorization", f"DPoP {token}"), ("DPoP", "garbage"), ("DPoP", key.proof("GET", url, token))]
    assert_refused(stack, stack.client.get(PATH, headers=headers), "invalid_dpop_proof")


def test_bound_token_as_bearer_is_refused(stack, tokens, key):
    token = tokens["access_token"]
    response = call(stack, token, key.proof("GET", stack.url + PATH, token), scheme="Bearer")
    assert_refused(stack, response, "dpop_required", error="invalid_token")


def test_bearer_tokens_keep_working(stack, key):
    token = stack.login()
    assert "cnf" not in claims_of(token)
    assert call(stack, token, scheme="Bearer").status_code == 200
    assert_refused(stack, call(stack, token, key.proof("GET", stack.url + PATH, token)), "dpop_unbound",
                   error="invalid_token")


def test_login_with_a_bad_proof_is_refused(stack, key):
    body = {"username": stack.username, "password": stack.password}
    for proof in (key.proof("POST", f"{stack.url}/api/auth/refresh"), key.proof("GET", f"{stack.url}/api/auth/login"),
                  "garbage"):
        response = stack.client.post("/api/auth/login", json=body, headers={"DPoP": proof})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_dpop_proof"
    proof = key.proof("POST", f"{stack.url}/api/auth/login")
    assert stack.client.post("/api/auth/login", json=body, headers={"DPoP": proof}).status_code == 200
    replay = stack.client.post("/api/auth/login", json=body, headers={"DPoP": proof})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_dpop_proof"


def test_refresh_needs_the_same_key(stack):
    key, thief = DpopKey.generate("ES256"), DpopKey.generate("ES256")
    refresh_token = dpop_login(stack, key)["refresh_token"]
    url = f"{stack.url}/api/auth/refresh"

    def refresh(proof):
        return stack.client.post("/api/auth/refresh", json={"refresh_token": refresh_token},
                                 headers={} if proof is None else {"DPoP": proof})

    for proof in (None, thief.proof("POST", url)):
        response = refresh(proof)
        assert response.status_code == 401 and response.json()["error"] == "invalid_grant", response.text
    # Neither attempt spent the token: its holder refreshes, and gets a token bound to the same key.
    response = refresh(key.proof("POST", url))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.thumbprint}
    token = body["access_token"]
    assert call(stack, token, key.proof("GET", stack.url + PATH, token)).status_code == 200


def dpop_refresh(stack, key, refresh_token):
    url = f"{stack.url}/api/auth/refresh"
    return stack.client.post("/api/auth/refresh", json={"refresh_token": refresh_token},
                             headers={"DPoP": key.proof("POST", url)})


def post_as_stranger(stack, path, headers, body=None):
    """A POST from a client of its own: the cookies it sends are exactly those in headers."""
    with httpx.Client(base_url=stack.url, timeout=10.0) as stranger:
        return stranger.post(path, headers=headers, json=body)


def assert_revoked_at_the_gateway(stack, key, token):
    # Revocations reach every validator worker within about a second.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = call(stack, token, key.proof("GET", stack.url + PATH, token))
        if response.status_code == 401:
            break
        time.sleep(0.1)
    assert response.status_code == 401 and response.json()["error"] == "revoked"


def test_a_proof_made_for_another_server_is_refused_whatever_host_the_client_sends(stack, key):
    # RFC 9449 section 4.3: htu must name this gateway (VALIDATOR_ and AUTH_PUBLIC_ORIGINS, which make run sets
    # to the address it listens on), never whatever Host the request carries.
    elsewhere, host = "http://rs-a.example", {"Host": "rs-a.example"}
    issued = dpop_login(stack, key)
    token = issued["access_token"]
    before = len(stack.backend_hits())
    response = stack.client.get(PATH, headers={**host, "Authorization": f"DPoP {token}",
                                               "DPoP": key.proof("GET", elsewhere + PATH, token)})
    assert_refused(stack, response, "invalid_dpop_proof")
    assert len(stack.backend_hits()) == before
    body = {"username": stack.username, "password": stack.password}
    login = stack.client.post("/api/auth/login", json=body,
                              headers={**host, "DPoP": key.proof("POST", elsewhere + "/api/auth/login")})
    assert login.status_code == 400 and login.json()["error"] == "invalid_dpop_proof", login.text
    refresh = stack.client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]},
                                headers={**host, "DPoP": key.proof("POST", elsewhere + "/api/auth/refresh")})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_dpop_proof", refresh.text
    # Control: the same requests with proofs for our own origin pass.
    assert call(stack, token, key.proof("GET", stack.url + PATH, token)).status_code == 200
    refresh = stack.client.post("/api/auth/refresh", json={"refresh_token": issued["refresh_token"]},
                                headers={"DPoP": key.proof("POST", stack.url + "/api/auth/refresh")})
    assert refresh.status_code == 200, refresh.text


def test_logout_needs_the_key_too(stack):
    key = DpopKey.generate("ES256")
    token = dpop_login(stack, key)["access_token"]
    url = f"{stack.url}/api/auth/logout"
    for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"DPoP {token}"},
                    {"Authorization": f"DPoP {token}", "DPoP": DpopKey.generate("ES256").proof("POST", url, token)}):
        response = stack.client.post("/api/auth/logout", headers=headers)
        assert response.status_code == 401, response.text
    assert call(stack, token, key.proof("GET", stack.url + PATH, token)).status_code == 200
    response = stack.client.post("/api/auth/logout", headers={"Authorization": f"DPoP {token}",
                                                               "DPoP": key.proof("POST", url, token)})
    assert response.status_code == 204, response.text
    assert_revoked_at_the_gateway(stack, key, token)


def test_the_key_holder_logs_out_with_a_bound_refresh_cookie_and_a_proof(stack):
    key = DpopKey.generate("ES256")
    tokens = dpop_login(stack, key)
    response = post_as_stranger(stack, "/api/auth/logout", {
        "Cookie": f"jwtgate_refresh={tokens['refresh_token']}", "Origin": stack.url,
        "DPoP": key.proof("POST", f"{stack.url}/api/auth/logout")})
    assert response.status_code == 204, response.text
    assert dpop_refresh(stack, key, tokens["refresh_token"]).status_code == 401
    assert_revoked_at_the_gateway(stack, key, tokens["access_token"])


@pytest.mark.parametrize("path", ["access cookie", "refresh cookie", "refresh token in the body"])
def test_a_bound_session_is_not_logged_out_without_its_key(stack, path):
    key, thief = DpopKey.generate("ES256"), DpopKey.generate("ES256")
    victim, own = dpop_login(stack, key), stack.login()
    headers, body, ath = {
        "access cookie": ({"Cookie": f"jwtgate_access={victim['access_token']}", "Origin": stack.url}, None,
                          victim["access_token"]),
        "refresh cookie": ({"Cookie": f"jwtgate_refresh={victim['refresh_token']}", "Origin": stack.url}, None, None),
        "refresh token in the body": ({"Authorization": f"Bearer {own}"}, {"refresh_token": victim["refresh_token"]},
                                      own),
    }[path]
    for proof in (None, thief.proof("POST", f"{stack.url}/api/auth/logout", ath)):
        response = post_as_stranger(stack, "/api/auth/logout", {**headers, **({"DPoP": proof} if proof else {})},
                                    body)
        assert_refused(stack, response, "invalid_token", error="invalid_token")
    # The victim's session lives on: its refresh token still rotates, and the new token passes the gateway.
    response = dpop_refresh(stack, key, victim["refresh_token"])
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert call(stack, token, key.proof("GET", stack.url + PATH, token)).status_code == 200


@pytest.mark.parametrize("path", ["refresh cookie", "refresh token in the body"])
def test_a_bound_refresh_token_is_refused_without_its_key(stack, path):
    key = DpopKey.generate("ES256")
    victim = dpop_login(stack, key)
    headers, body = {
        "refresh cookie": ({"Cookie": f"jwtgate_refresh={victim['refresh_token']}", "Origin": stack.url}, {}),
        "refresh token in the body": ({}, {"refresh_token": victim["refresh_token"]}),
    }[path]
    response = post_as_stranger(stack, "/api/auth/refresh", headers, body)
    assert_refused(stack, response, "invalid_grant", error="invalid_token")
    assert dpop_refresh(stack, key, victim["refresh_token"]).status_code == 200


def test_the_example_cli_as_the_readme_shows_it(stack, tmp_path):
    client = [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "dpop_client.py")]
    login = subprocess.run([*client, "login", stack.url, stack.username], input=stack.password + "\n", cwd=tmp_path,
                           capture_output=True, text=True, timeout=30)
    assert login.returncode == 0, login.stderr
    assert "token_type: DPoP" in login.stdout
    assert (tmp_path / "dpop-key.pem").stat().st_mode & 0o777 == 0o600
    command = subprocess.run([*client, "curl", stack.url + PATH], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30).stdout
    first = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30).stdout
    assert first.startswith("HTTP/1.1 200"), first
    again = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30).stdout
    assert again.startswith("HTTP/1.1 401") and "dpop_replayed" in again, again
    refresh = subprocess.run([*client, "refresh", stack.url], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert refresh.returncode == 0 and "token_type: DPoP" in refresh.stdout, refresh.stderr


@pytest.fixture(scope="module")
def nonce_stack(tmp_path_factory):
    running = start_stack(tmp_path_factory, "dpop-nonces", VALIDATOR_WORKERS="2", VALIDATOR_DPOP_NONCE_SECONDS="30",
                          AUTH_DPOP_NONCE_SECONDS="30")
    yield running
    running.close()


def test_server_nonces_at_login_and_at_the_gateway(nonce_stack):
    """RFC 9449 sections 8 and 9: each server hands out its nonce, and a proof without it is refused."""
    stack, key = nonce_stack, DpopKey.generate("ES256")
    login_url = f"{stack.url}/api/auth/login"
    body = {"username": stack.username, "password": stack.password}
    refused = stack.client.post("/api/auth/login", json=body, headers={"DPoP": key.proof("POST", login_url)})
    assert refused.status_code == 400 and refused.json()["error"] == "use_dpop_nonce", refused.text
    issued = stack.client.post("/api/auth/login", json=body, headers={
        "DPoP": key.proof("POST", login_url, nonce=refused.headers["DPoP-Nonce"])})
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    before = len(stack.backend_hits())
    asked = call(stack, token, key.proof("GET", stack.url + PATH, token))
    assert_refused(stack, asked, "use_dpop_nonce", error="use_dpop_nonce")
    gateway_nonce = asked.headers["DPoP-Nonce"]
    # Two servers, two secrets: the auth API's nonce is no good at the gateway.
    assert gateway_nonce != refused.headers["DPoP-Nonce"]
    wrong = call(stack, token, key.proof("GET", stack.url + PATH, token, nonce=refused.headers["DPoP-Nonce"]))
    assert_refused(stack, wrong, "use_dpop_nonce", error="use_dpop_nonce")
    assert len(stack.backend_hits()) == before
    # Both workers hold the data directory's secret: every proof with the nonce passes, whichever worker
    # checks it, and each answer hands out a current nonce (the same one, or the next after a slot ends).
    nonces = Nonces((stack.stack.data_dir / "dpop-nonce.key").read_bytes(), 30)
    for _ in range(4):
        allowed = call(stack, token, key.proof("GET", stack.url + PATH, token, nonce=gateway_nonce))
        assert allowed.status_code == 200, allowed.text
        assert nonces.valid(allowed.headers["DPoP-Nonce"])
    assert len(stack.backend_hits()) == before + 4
    # Bearer tokens are untouched, and get no nonce.
    plain = call(stack, stack.login(), scheme="Bearer")
    assert plain.status_code == 200 and "DPoP-Nonce" not in plain.headers
