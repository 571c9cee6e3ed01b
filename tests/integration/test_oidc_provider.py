"""The OpenID provider fixture is the real thing: oidc-provider's discovery, JWKS and RFC 9068 access tokens."""

import base64
import json
import subprocess

import httpx
import pytest
from jose import JWTError, jwt

from tests.oidc_support import AUDIENCE, SCRIPT, OidcProvider, private_jwk


def segment(token, index):
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def public_key(jwks, kid):
    return next(key for key in jwks["keys"] if key["kid"] == kid)


def verified_claims(provider, token):
    """The token's claims once python-jose has checked its signature with the key the JWKS names by kid."""
    header = segment(token, 0)
    key = public_key(provider.jwks(), header["kid"])
    return jwt.decode(token, key, algorithms=[key["alg"]], audience=AUDIENCE, issuer=provider.issuer)


@pytest.fixture(scope="module")
def rotating(tmp_path_factory):
    """A provider of this module's own: the rotation tests restart it."""
    provider = OidcProvider(tmp_path_factory.mktemp("oidc-rotating")).start()
    yield provider
    provider.stop()


def test_discovery_names_the_issuer_and_a_jwks_uri(oidc_provider):
    metadata = oidc_provider.discovery()
    assert metadata["issuer"] == oidc_provider.issuer == f"http://127.0.0.1:{oidc_provider.port}"
    assert metadata["jwks_uri"].startswith(oidc_provider.issuer + "/")
    assert "client_credentials" in metadata["grant_types_supported"]


def test_the_jwks_holds_an_rsa_and_an_ec_public_key(oidc_provider):
    keys = oidc_provider.jwks()["keys"]
    assert sorted((key["kty"], key["alg"], key.get("crv")) for key in keys) == [
        ("EC", "ES256", "P-256"), ("RSA", "RS256", None)]
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys(), "a private member is published"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_client_credentials_token_is_a_jwt_access_token_for_the_resource(oidc_provider, alg):
    token = oidc_provider.token(scope="api:read api:write", alg=alg)
    header = segment(token, 0)
    assert len(token.split(".")) == 3
    assert header == {"alg": alg, "typ": "at+jwt", "kid": oidc_provider.kid(alg)}
    # RFC 9068 section 2.2: the claims of a JWT access token.
    claims = verified_claims(oidc_provider, token)
    assert claims["aud"] == AUDIENCE
    assert claims["iss"] == oidc_provider.issuer
    assert claims["client_id"] == claims["sub"] == oidc_provider.client_id
    assert claims["scope"] == "api:read api:write"
    assert claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] == oidc_provider.ttl_seconds
    assert claims["jti"]


def test_the_scope_asked_for_is_the_scope_granted(oidc_provider):
    assert segment(oidc_provider.token(scope="api:read"), 1)["scope"] == "api:read"


def test_a_token_does_not_verify_with_another_key(oidc_provider):
    token = oidc_provider.token(alg="RS256")
    stranger = {name: value for name, value in private_jwk("RS256").items() if name in ("kty", "alg", "n", "e")}
    with pytest.raises(JWTError, match="Signature verification failed"):
        jwt.decode(token, stranger, algorithms=["RS256"], audience=AUDIENCE)


def test_a_wrong_client_secret_gets_401(oidc_provider):
    response = oidc_provider.token_response(client_secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.text


def test_an_unknown_resource_is_refused(oidc_provider):
    response = oidc_provider.token_response(resource="https://elsewhere.example/")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_after_a_rotation_the_new_kid_is_published_and_signs(rotating):
    old = rotating.kid("RS256")
    port = rotating.port
    new = rotating.rotate("RS256", keep_old=True)
    assert new != old and rotating.port == port
    kids = {key["kid"] for key in rotating.jwks()["keys"]}
    assert {old, new, rotating.kid("ES256")} <= kids
    token = rotating.token(alg="RS256")
    assert segment(token, 0)["kid"] == new
    assert verified_claims(rotating, token)["iss"] == rotating.issuer


def test_a_rotation_that_drops_the_old_key_unpublishes_it(rotating):
    old = rotating.kid("ES256")
    new = rotating.rotate("ES256", keep_old=False)
    kids = {key["kid"] for key in rotating.jwks()["keys"]}
    assert new in kids and old not in kids
    token = rotating.token(alg="ES256")
    assert segment(token, 0)["kid"] == new
    verified_claims(rotating, token)


def test_a_stopped_provider_refuses_connections_and_starts_again_on_its_port(rotating):
    rotating.stop()
    with pytest.raises(httpx.ConnectError):
        rotating.discovery()
    rotating.start()
    assert rotating.discovery()["issuer"] == rotating.issuer


def test_a_given_issuer_is_the_one_discovery_and_tokens_carry(tmp_path):
    provider = OidcProvider(tmp_path)
    # Auth0's issuers end with a slash: compared exactly, it is another issuer.
    provider.issuer = f"http://localhost:{provider.port}/"
    provider.start()
    try:
        assert provider.discovery()["issuer"] == provider.issuer
        assert segment(provider.token(), 1)["iss"] == provider.issuer
    finally:
        provider.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::"])
def test_the_script_refuses_to_listen_beyond_loopback(tmp_path, host):
    result = subprocess.run(["node", str(SCRIPT), "--host", host, "--port", "9", "--jwks", str(tmp_path / "none"),
                             "--resource", AUDIENCE], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s"})
    assert result.returncode == 2
    assert "must be a loopback address" in result.stderr
