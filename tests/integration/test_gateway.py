"""The whole flow through the real Nginx, as `make run` starts it."""

import base64
import json
import time

import pytest

from jwtgate.loopback import http_get
from tests.minting import RsaSigner, claims, rs256


@pytest.fixture(scope="module")
def stack_signer(gateway):
    kid = gateway.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    return RsaSigner.from_pem(gateway.private_key_pem(), kid)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_json_401(response, error, message):
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error, "message": message}
    assert len(response.headers.get_list("www-authenticate")) == 1
    assert response.headers["x-content-type-options"] == "nosniff"


def test_public_route_needs_no_token(gateway):
    response = gateway.client.get("/api/public/")
    assert response.status_code == 200
    assert response.json() == {"message": "Public route: No auth needed"}


def test_head_is_answered_wherever_get_is(gateway):
    # RFC 9110 section 9.3.2: GET's status and headers, no body; through Nginx to the sample backend.
    token = gateway.login()
    for path, headers in (("/api/public/", {}), ("/api/protected/", bearer(token)),
                          ("/api/protected/deep/path", bearer(token)), ("/api/orders/", bearer(token))):
        get = gateway.client.get(path, headers=headers)
        head = gateway.client.head(path, headers=headers)
        assert get.status_code == head.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]
    assert ("HEAD", "/api/protected/", gateway.username) in gateway.backend_hits()
    # A HEAD without a token is refused as a GET is, before the backend.
    before = len(gateway.backend_hits())
    assert gateway.client.head("/api/protected/").status_code == 401
    assert len(gateway.backend_hits()) == before


def test_login_returns_an_access_token(gateway):
    response = gateway.client.post("/api/auth/login", json={"username": gateway.username,
                                                            "password": gateway.password})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["token"] == body["access_token"]
    assert body["access_token"].count(".") == 2


def test_wrong_password_is_refused(gateway):
    response = gateway.client.post("/api/auth/login", json={"username": gateway.username, "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_protected_route_without_token(gateway):
    before = len(gateway.backend_hits())
    response = gateway.client.get("/api/protected/")
    assert_json_401(response, "missing_token", "Missing Authorization header")
    # RFC 9728 section 5.1: where a client finds which authorization servers issue our tokens.
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="jwtgate", resource_metadata="{gateway.url}/.well-known/oauth-protected-resource"')
    assert len(gateway.backend_hits()) == before


def test_protected_route_with_malformed_token(gateway):
    before = len(gateway.backend_hits())
    response = gateway.client.get("/api/protected/", headers=bearer("not-a-jwt"))
    assert_json_401(response, "malformed", "Invalid token: Malformed token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert len(gateway.backend_hits()) == before


def test_protected_route_with_token_from_another_key(gateway, stack_signer):
    impostor = RsaSigner(kid=stack_signer.kid)
    token = rs256(impostor, claims(time.time(), iss=gateway.issuer))
    response = gateway.client.get("/api/protected/", headers=bearer(token))
    assert_json_401(response, "invalid_signature", "Invalid token: Invalid signature")


def test_protected_route_with_expired_token(gateway, stack_signer):
    now = int(time.time())
    token = rs256(stack_signer, claims(now, iss=gateway.issuer, iat=now - 1000, exp=now - 100))
    response = gateway.client.get("/api/protected/", headers=bearer(token))
    assert_json_401(response, "expired", "Invalid token: Token expired")
    assert 'error_description="Token expired"' in response.headers["www-authenticate"]


def test_protected_route_with_valid_token(gateway):
    response = gateway.client.get("/api/protected/orders/42", headers=bearer(gateway.login()))
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Protected route: Hello user"
    assert body["userId"] == gateway.username
    assert body["roles"] == ["user"]
    assert body["scopes"] == ["orders:read"]
    assert (("GET", "/api/protected/orders/42", gateway.username) in gateway.backend_hits())


@pytest.mark.parametrize("name", ["X-User-Id", "x-user-id", "X-USER-ID", "X-User-Roles", "X-User-Scopes"])
def test_spoofed_identity_headers_are_replaced(gateway, name):
    response = gateway.client.get("/api/protected/", headers={**bearer(gateway.login()), name: "admin"})
    body = response.json()
    assert body["userId"] == gateway.username
    assert "admin" not in body["roles"] and "admin" not in body["scopes"]


def test_spoofed_identity_header_without_token_never_reaches_backend(gateway):
    before = len(gateway.backend_hits())
    response = gateway.client.get("/api/protected/", headers={"X-User-Id": "admin"})
    assert response.status_code == 401
    assert len(gateway.backend_hits()) == before


def test_spoofed_identity_is_dropped_on_public_routes(gateway):
    gateway.client.get("/api/public/", headers={"X-User-Id": "admin", "X_User_Id": "admin"})
    method, path, user = gateway.backend_hits()[-1]
    assert (method, path) == ("GET", "/api/public/")
    assert user is None


@pytest.mark.parametrize("path", ["/verify", "/_jwtgate/verify", "/_jwtgate/verify/", "/healthz/../_jwtgate/verify"])
def test_verify_is_not_reachable_from_outside(gateway, path):
    response = gateway.client.get(path, headers=bearer(gateway.login()))
    assert response.status_code == 404
    assert "x-user-id" not in response.headers


def test_every_protected_location_asks_the_validator(gateway):
    config = (gateway.stack.nginx_prefix / "conf.d" / "gateway.conf").read_text()
    blocks = config.split("location ")[1:]
    protected = [block.split("{")[0].split()[-1] for block in blocks if "jwtgate-protect.conf" in block]
    assert protected, "the example gateway protects at least one location"
    validator_log = gateway.stack.log_path("validator")
    for prefix in protected:
        path = f"{prefix}probe"
        request_id = gateway.request_id_of(path, lambda: assert_json_401(
            gateway.client.get(path), "missing_token", "Missing Authorization header"))
        deadline = time.monotonic() + 5
        while request_id not in validator_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert request_id in validator_log.read_text()


def test_logs_carry_no_token_and_no_query_string(gateway):
    token = gateway.login()
    gateway.client.get("/api/protected/?secret=hunter2", headers=bearer(token))
    gateway.client.get("/api/protected/", headers=bearer(token + "x"))
    time.sleep(0.2)
    for name in ("nginx-access", "nginx-error", "validator", "auth_api", "backend"):
        text = gateway.stack.log_path(name).read_text()
        assert token not in text, name
        assert token.split(".")[2] not in text, name
        assert "hunter2" not in text, name
        assert gateway.password not in text, name
    for line in gateway.stack.log_path("nginx-access").read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize("path", ["/api/public/", "/healthz", "/.well-known/jwks.json",
                                  "/.well-known/oauth-authorization-server", "/nowhere"])
def test_every_answer_says_nosniff(gateway, path):
    assert gateway.client.get(path).headers.get_list("x-content-type-options") == ["nosniff"]


def test_unknown_path_is_json_404(gateway):
    response = gateway.client.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_jwks_is_public_keys_only(gateway):
    keys = gateway.client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all(key["kty"] == "RSA" and "d" not in key and key["alg"] == "RS256" for key in keys)


def test_our_auth_api_is_a_provider_found_by_discovery_like_any_other(gateway):
    # RFC 8414 metadata, public through Nginx, for the issuer the tokens carry: the gateway's URL.
    response = gateway.client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["issuer"] == gateway.issuer == gateway.url
    assert metadata["jwks_uri"] == f"{gateway.url}/.well-known/jwks.json"
    published = {key["kid"] for key in gateway.client.get(metadata["jwks_uri"]).json()["keys"]}
    # No JWKS URL configured: the validator read the metadata, then the jwks_uri it names.
    assert "VALIDATOR_JWKS_URL" not in gateway.stack.service_env()
    events = [json.loads(line) for line in gateway.stack.log_path("validator").read_text().splitlines()
              if line.startswith("{")]
    assert {"discovery found jwks_uri", "jwks loaded"} <= {event["event"] for event in events}
    assert {event.get("url") for event in events if event["event"] == "discovery found jwks_uri"} == \
        {metadata["jwks_uri"]}
    status, body = http_get("http://localhost/readyz", unix_socket=gateway.stack.socket("validator"), timeout=5)
    ready = json.loads(body)
    assert (status, ready["status"], ready["providers_without_keys"]) == (200, "ready", [])
    assert ready["keys"] >= len(published) > 0
    # A login token passes where only this provider's tokens are accepted.
    token = gateway.login()
    payload = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"] == gateway.url
    response = gateway.client.get("/api/staff/", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["userId"] == gateway.username


def test_demo_login_is_off_by_default(gateway):
    response = gateway.client.get("/api/auth/login")
    assert response.status_code in (404, 405)
    assert "access_token" not in response.text
