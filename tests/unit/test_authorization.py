"""Per-location requirements and claim-to-header mapping in the validator, in-process."""

import base64
import json
import time

import falcon.testing
import pytest

from jwtgate.settings import ConfigError
from tests.minting import RsaSigner, claims, rs256
from tests.fakes import FakeJwksServer
from validator import authorization
from validator.app import create_app
from validator.config import DEFAULT_CLAIM_HEADERS, Settings
from jwtgate.keys import JwksSource
from jwtgate.claims import Identity


def identity(**overrides):
    base = dict(sub="alice", roles=("user", "support"), scopes=("a:read", "b:read"), jti="j", iat=1, exp=2,
                extra=(("tenant", ("acme", "globex")),))
    return Identity(**(base | overrides))


@pytest.mark.parametrize("scopes, roles, claims_, unmet", [
    ("a:read", None, None, False),
    ("a:read b:read", None, None, False),
    ("a:read c:write", None, None, True),
    (None, "admin support", None, False),
    (None, "admin", None, True),
    (None, None, "tenant=acme", False),
    (None, None, "tenant=initech", True),
    (None, None, "sub=alice tenant=globex", False),
    (None, None, "region=eu", True),
    ("", "", "", False),
])
def test_requirements(scopes, roles, claims_, unmet):
    assert authorization.unmet(identity(), authorization.parse(scopes, roles, claims_)) is unmet


@pytest.mark.parametrize("scopes, roles, claims_", [
    ("a,b", None, None), (None, "ad min\x00", None), (None, None, "tenant="), (None, None, "tenant=a b=c=d"),
    (None, None, "=acme"), (None, None, "tenant=ac me\r\n"), ("x " * 40, None, None),
])
def test_unreadable_requirements_are_refused(scopes, roles, claims_):
    with pytest.raises(authorization.InvalidRequirement):
        authorization.parse(scopes, roles, claims_)


@pytest.fixture
def client():
    signer = RsaSigner(kid="k")
    keys = JwksSource("http://auth/jwks", fetch=FakeJwksServer(signer))
    app = create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"), keys=keys)
    return falcon.testing.TestClient(app), signer


def test_403_names_the_missing_scope(client):
    test_client, signer = client
    token = rs256(signer, claims(time.time(), scope="a:read"))
    result = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}",
                                                          "X-Jwtgate-Require-Scopes": "a:read b:write"})
    assert result.status_code == 403
    assert result.headers["X-Auth-Error"] == "insufficient_scope"
    assert result.headers["WWW-Authenticate"].endswith('error="insufficient_scope", '
                                                       'error_description="Insufficient scope or role", '
                                                       'scope="a:read b:write"')
    assert "X-User-Id" not in result.headers


def test_unreadable_requirement_forbids_everyone(client):
    test_client, signer = client
    token = rs256(signer, claims(time.time()))
    result = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}",
                                                          "X-Jwtgate-Require-Claims": "tenant="})
    assert result.status_code == 403


def test_invalid_token_is_401_even_where_requirements_exist(client):
    test_client, _ = client
    result = test_client.simulate_get("/verify", headers={"Authorization": "Bearer a.b.c",
                                                          "X-Jwtgate-Require-Roles": "admin"})
    assert result.status_code == 401


def test_every_mapped_header_is_sent_empty_when_absent(client):
    test_client, signer = client
    token = rs256(signer, claims(time.time(), roles=None, scope=None))
    result = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
    for pair in DEFAULT_CLAIM_HEADERS.split():
        header = pair.split(":")[1]
        assert header in result.headers
    assert result.headers["X-User-Email"] == ""


def test_numbers_are_header_safe_claims(client):
    test_client, signer = client
    token = rs256(signer, claims(time.time(), tenant=[7, "acme"]))
    result = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
    assert result.headers["X-User-Tenant"] == "7,acme"


def test_the_whole_claim_set_is_forwarded_only_when_asked(client):
    test_client, signer = client
    token = rs256(signer, claims(time.time(), tenant="acme", nested={"deep": [1, {"x": None}]}))
    result = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 200 and "X-User-Claims" not in result.headers
    keys = JwksSource("http://auth/jwks", fetch=FakeJwksServer(signer))
    forwarding = falcon.testing.TestClient(create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                                                               forward_claims=True),
                                                      keys=keys))
    payload = token.split(".")[1]
    for _ in ("miss", "cached verdict"):
        result = forwarding.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
        assert result.status_code == 200
        assert result.headers["X-User-Claims"] == payload
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert decoded["nested"] == {"deep": [1, {"x": None}]} and decoded["sub"] == result.headers["X-User-Id"]
    other = rs256(signer, claims(time.time(), sub="bob"))
    assert forwarding.simulate_get("/verify", headers={"Authorization": f"Bearer {other}"}).headers[
        "X-User-Claims"] == other.split(".")[1]
    refused = forwarding.simulate_get("/verify", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert refused.status_code == 401 and "X-User-Claims" not in refused.headers


@pytest.mark.parametrize("value", ["sub", "sub:User-Id", "sub:X-User-Id sub:x-user-id", "bad claim:X-A",
                                   "sub:X-User-Id email:x-user-claims"])
def test_claim_header_mapping_is_checked(value):
    with pytest.raises(ConfigError, match="VALIDATOR_CLAIM_HEADERS"):
        Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", "VALIDATOR_CLAIM_HEADERS": value})


def test_custom_mapping():
    settings = Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks",
                                  "VALIDATOR_CLAIM_HEADERS": "sub:X-Subject org:X-Org"})
    assert settings.claim_headers == (("sub", "X-Subject"), ("org", "X-Org"))


def cookie_request(test_client, token, method="GET", **headers):
    sent = {"X-Jwtgate-Cookie-Token": token, "X-Original-Method": method,
            "X-Jwtgate-Self-Origin": "http://127.0.0.1:8080", **headers}
    return test_client.simulate_get("/verify", headers=sent)


def test_token_from_the_cookie(client):
    test_client, signer = client
    result = cookie_request(test_client, rs256(signer, claims(time.time())))
    assert result.status_code == 200
    assert result.headers["X-User-Id"] == "alice"


def test_header_wins_over_the_cookie(client):
    test_client, signer = client
    cookie = rs256(signer, claims(time.time(), sub="cookie-user"))
    header = rs256(signer, claims(time.time(), sub="header-user"))
    result = cookie_request(test_client, cookie, Authorization=f"Bearer {header}")
    assert result.headers["X-User-Id"] == "header-user"
    result = cookie_request(test_client, cookie, Authorization="Bearer bad.token.here")
    assert result.status_code == 401


@pytest.mark.parametrize("cookie", ["!", "a b", "x" * 8001, "tok;en"])
def test_malformed_cookie_is_invalid_request(client, cookie):
    test_client, _ = client
    assert cookie_request(test_client, cookie).headers["X-Auth-Error"] == "invalid_request"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("origin, status", [
    ("http://127.0.0.1:8080", 200), ("https://app.example", 200), ("https://evil.example", 401), (None, 401),
])
def test_cookie_writes_need_a_trusted_origin(method, origin, status):
    signer = RsaSigner(kid="k")
    keys = JwksSource("http://auth/jwks", fetch=FakeJwksServer(signer))
    settings = Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate", allowed_origins=frozenset({"https://app.example"}))
    test_client = falcon.testing.TestClient(create_app(settings, keys=keys))
    token = rs256(signer, claims(time.time()))
    headers = {"X-Jwtgate-Origin": origin} if origin else {}
    result = cookie_request(test_client, token, method, **headers)
    assert result.status_code == status
    if status == 401:
        assert result.headers["X-Auth-Error"] == "cross_site_request"
    # Reads and bearer-token writes need no Origin: CSRF rides on cookies only.
    assert cookie_request(test_client, token, "GET").status_code == 200
    bearer = test_client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}",
                                                          "X-Original-Method": method})
    assert bearer.status_code == 200


def test_allowed_origins_are_checked():
    with pytest.raises(ConfigError, match="VALIDATOR_ALLOWED_ORIGINS"):
        Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", "VALIDATOR_ALLOWED_ORIGINS": "evil.example"})
