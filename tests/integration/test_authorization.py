"""Per-location requirements and the identity contract, through the real Nginx."""

import time

import pytest

from tests.conftest import start_stack
from tests.minting import RsaSigner, claims, rs256


FORBIDDEN = {"error": "insufficient_scope", "message": "Insufficient scope or role"}
CHALLENGE = ('Bearer realm="jwtgate", error="insufficient_scope", error_description="Insufficient scope or role", '
             'resource_metadata="{}/.well-known/oauth-protected-resource"')


@pytest.fixture(scope="module")
def tokens(gateway):
    return {"user": gateway.login(), "admin": gateway.login(gateway.admin, gateway.admin_password)}


@pytest.fixture(scope="module")
def signer(gateway):
    kid = gateway.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    return RsaSigner.from_pem(gateway.private_key_pem(), kid)


def get(gateway, path, token=None, method="GET", **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return gateway.client.request(method, path, headers=headers)


def assert_forbidden(gateway, response, scope=None):
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    expected = CHALLENGE.format(gateway.url) + (f', scope="{scope}"' if scope else "")
    assert response.headers.get_list("www-authenticate") == [expected]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_role_required_location_forbids_other_roles(gateway, tokens):
    before = len(gateway.backend_hits())
    assert_forbidden(gateway, get(gateway, "/api/admin/reports", tokens["user"]))
    assert len(gateway.backend_hits()) == before
    allowed = get(gateway, "/api/admin/reports", tokens["admin"])
    assert allowed.status_code == 200
    assert "admin" in allowed.json()["roles"]


@pytest.mark.parametrize("path", ["/api/admin/", "/api/orders/", "/api/tenant/"])
def test_no_token_or_bad_token_is_401_not_403(gateway, path):
    assert get(gateway, path).status_code == 401
    assert get(gateway, path, "not.a.token").status_code == 401


def test_scope_depends_on_the_method(gateway, tokens):
    assert get(gateway, "/api/orders/1", tokens["user"]).status_code == 200
    assert_forbidden(gateway, get(gateway, "/api/orders/1", tokens["user"], method="POST"), scope="orders:write")
    assert get(gateway, "/api/orders/1", tokens["admin"], method="POST").status_code == 200


@pytest.mark.parametrize("name", ["X-Jwtgate-Require-Roles", "X-Jwtgate-Require-Scopes", "X-Jwtgate-Require-Claims"])
def test_requirements_cannot_come_from_the_client(gateway, tokens, name):
    assert_forbidden(gateway, get(gateway, "/api/admin/", tokens["user"], **{name: ""}))
    assert get(gateway, "/api/protected/", tokens["user"], **{name: "admin tenant=x"}).status_code == 200


def test_claim_requirement_from_a_request_header(gateway, signer):
    token = rs256(signer, claims(time.time(), iss=gateway.issuer, sub=gateway.username, tenant="acme"))
    assert get(gateway, "/api/tenant/", token, **{"X-Tenant-Id": "acme"}).json()["tenant"] == "acme"
    assert_forbidden(gateway, get(gateway, "/api/tenant/", token, **{"X-Tenant-Id": "globex"}))
    assert_forbidden(gateway, get(gateway, "/api/tenant/", token))
    assert_forbidden(gateway, get(gateway, "/api/tenant/", token, **{"X-Tenant-Id": "acme other=1"}))


def test_mapped_claims_reach_the_backend(gateway, signer):
    token = rs256(signer, claims(time.time(), iss=gateway.issuer, sub="erin", email="erin@example.com",
                                 tenant=["acme", "globex"]))
    body = get(gateway, "/api/protected/", token).json()
    assert (body["userId"], body["email"], body["tenant"]) == ("erin", "erin@example.com", "acme,globex")


@pytest.mark.parametrize("overrides", [
    {"email": "a@b.c\r\nX-User-Id: admin"},
    {"email": "jöhn@example.com"},
    {"tenant": ["acme,globex"]},
    {"tenant": {"name": "acme"}},
    {"tenant": [True]},
    {"email": " padded@example.com"},
])
def test_hostile_mapped_claims_refuse_the_token(gateway, signer, overrides):
    before = len(gateway.backend_hits())
    response = get(gateway, "/api/protected/", rs256(signer, claims(time.time(), iss=gateway.issuer, **overrides)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_claims"
    assert len(gateway.backend_hits()) == before


@pytest.mark.parametrize("path", ["/api/public/", "/api/protected/", "/api/admin/"])
@pytest.mark.parametrize("name", ["X-User-Email", "x-user-tenant"])
def test_mapped_identity_headers_cannot_be_spoofed(gateway, tokens, path, name):
    get(gateway, path, tokens["admin"], **{name: "spoofed"})
    response = get(gateway, path.replace("public", "protected"), tokens["admin"], **{name: "spoofed"})
    body = response.json()
    assert body["email"] is None and body["tenant"] is None


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory):
    running = start_stack(tmp_path_factory, "claims", VALIDATOR_FORWARD_CLAIMS="1")
    yield running
    running.close()


def test_the_whole_claim_set_reaches_the_backend_when_forwarded(forwarding):
    kid = forwarding.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    signer = RsaSigner.from_pem(forwarding.private_key_pem(), kid)
    # Large, nested and non-ASCII claims: the header holds the payload as signed, whatever it says.
    token = rs256(signer, claims(time.time(), iss=forwarding.issuer, sub="erin",
                                 profile={"name": "Jöhn", "tags": ["a"] * 200}, tenant="acme"))
    spoofed = "eyJzdWIiOiJtYWxsb3J5In0"    # {"sub":"mallory"}
    body = get(forwarding, "/api/protected/", token, **{"X-User-Claims": spoofed}).json()
    assert body["claims"]["sub"] == "erin" and body["claims"]["profile"] == {"name": "Jöhn", "tags": ["a"] * 200}
    assert body["claims"]["jti"] and body["claims"]["aud"] == "jwtgate-api"
    # The micro-cache is off here, so this is the validator's cached verdict: the same claims.
    assert get(forwarding, "/api/protected/", token).json()["claims"] == body["claims"]
    assert get(forwarding, "/api/protected/", forwarding.login()).json()["claims"]["sub"] == forwarding.username
