"""Each preset against tokens shaped like its vendor's, as the vendor's documentation shows them.

Header members, claims and key sets follow the vendors' published pages (docs/providers/*.md cites
them), not a running instance: the tokens are signed by test keys, and discovery and the JWKS are
served in-process through JwksSource's fetch hook. Every token goes through the whole validator
app (validator.app.create_app) with a providers entry of that preset.
"""

import asyncio
import json
import uuid

import falcon.testing
import pytest

from jwtgate.fetch import Response
from tests.fakes import FakeClock
from tests.minting import RsaSigner, b64, rs256, with_overrides
from validator.app import create_app, make_policy
from validator.config import Settings
from jwtgate.keys import JwksSource
from validator.providers import ProblemList, TrustedProviders, build

NOW = 1_800_000_000


class Vendor:
    """One vendor's provider: its discovery document and key set, served to JwksSource in-process."""

    def __init__(self, issuer, jwks_uri, signers, members=None):
        self.issuer = issuer
        self.signers = signers
        metadata = issuer.rstrip("/") + "/.well-known/openid-configuration"
        keys = [dict(signer.jwk, **(members or {})) for signer in signers]
        self.documents = {metadata: {"issuer": issuer, "jwks_uri": jwks_uri}, jwks_uri: {"keys": keys}}

    def fetch(self, url, *, unix_socket=None, timeout=None):
        if url not in self.documents:
            return Response(404, {}, b"")
        return Response(200, {"cache-control": "public, max-age=3600"}, json.dumps(self.documents[url]).encode())

    def client(self, entry, clock):
        """The validator app trusting this vendor by `entry` (a providers file table), keys by discovery."""
        problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
        provider = build("idp", dict(entry, issuer=self.issuer), problems)
        assert problems.items == [] and provider.discovery
        settings = Settings(providers=(provider,))
        keys = JwksSource(issuer=provider.issuer, fetch=self.fetch, clock=clock)
        asyncio.run(keys.refresh())
        assert len(keys) == len(self.signers)
        trusted = TrustedProviders([(provider.name, make_policy(settings, provider), keys)])
        return falcon.testing.TestClient(create_app(settings, providers=trusted, clock=clock))


def token(signer, header, claims):
    """An RS256 token with exactly this header (kid filled in when the header names one) and these claims."""
    header = dict(header, kid=signer.kid) if "kid" in header else dict(header)
    return rs256(signer, claims, head=header)


def verify(client, token_):
    return client.simulate_get("/verify", headers={"Authorization": f"Bearer {token_}"})


def passed(result, sub, roles, scopes):
    assert result.status_code == 200, result.headers.get("X-Auth-Error")
    assert result.headers["X-User-Id"] == sub
    assert result.headers["X-User-Roles"] == roles
    assert result.headers["X-User-Scopes"] == scopes


def refused(result, reason):
    assert result.status_code == 401
    assert result.headers["X-Auth-Error"] == reason
    assert "X-User-Id" not in result.headers


@pytest.fixture
def clock():
    return FakeClock(NOW)


def guid():
    return str(uuid.uuid4())


# --- Keycloak -----------------------------------------------------------------------------------
# Keycloak's access tokens: header typ JWT, payload typ Bearer (DPoP when bound), realm roles under
# realm_access.roles, client roles under resource_access.<client>.roles, the audience from an
# Audience mapper beside Audience Resolve's `account`.

KEYCLOAK = "https://sso.example.com/realms/acme"
KEYCLOAK_HEADER = {"alg": "RS256", "typ": "JWT", "kid": ""}
KEYCLOAK_SUB = "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture(scope="module")
def keycloak():
    # Keycloak's JWKS lists x5c, x5t and x5t#S256 beside each key.
    return Vendor(KEYCLOAK, f"{KEYCLOAK}/protocol/openid-connect/certs",
                  [RsaSigner(kid="lXb0sQ2CjUP7pG5g9zrA_vQkqJ8Yk2nR0xZ3LmN4aBc")],
                  {"x5t": "Zk3T8gQ2b1yJX1kVv9sWm0aR5nE", "x5t#S256": "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c"})


def keycloak_claims(**overrides):
    claims = {
        "exp": NOW + 300, "iat": NOW - 10, "auth_time": NOW - 30, "jti": f"onrtac:{guid()}", "iss": KEYCLOAK,
        "aud": ["orders-api", "account"], "sub": KEYCLOAK_SUB, "typ": "Bearer", "azp": "web-app", "sid": guid(),
        "acr": "1", "allowed-origins": ["https://app.example.com"],
        "realm_access": {"roles": ["default-roles-acme", "offline_access", "uma_authorization", "orders-admin"]},
        "resource_access": {"orders-api": {"roles": ["editor"]}, "account": {"roles": ["manage-account"]}},
        "scope": "openid profile email", "email_verified": True, "name": "Alice Liddell",
        "preferred_username": "alice", "given_name": "Alice", "family_name": "Liddell", "email": "alice@example.com",
    }
    return with_overrides(claims, overrides)


def test_a_keycloak_access_token_passes_with_its_realm_roles_and_email(keycloak, clock):
    client = keycloak.client({"preset": "keycloak", "audiences": "orders-api"}, clock)
    result = verify(client, token(keycloak.signers[0], KEYCLOAK_HEADER, keycloak_claims()))
    passed(result, KEYCLOAK_SUB, "default-roles-acme,offline_access,uma_authorization,orders-admin",
           "openid,profile,email")
    assert result.headers["X-User-Email"] == "alice@example.com"


def test_keycloak_client_roles_by_an_entry_that_names_the_path(keycloak, clock):
    client = keycloak.client({"preset": "keycloak", "audiences": "orders-api",
                              "roles": ["realm_access.roles", "resource_access.orders-api.roles"]}, clock)
    result = verify(client, token(keycloak.signers[0], KEYCLOAK_HEADER, keycloak_claims(
        realm_access={"roles": ["offline_access"]})))
    passed(result, KEYCLOAK_SUB, "offline_access,editor", "openid,profile,email")


def test_keycloak_with_the_rfc_9068_header_type_passes(keycloak, clock):
    client = keycloak.client({"preset": "keycloak", "audiences": "orders-api"}, clock)
    result = verify(client, token(keycloak.signers[0], dict(KEYCLOAK_HEADER, typ="at+jwt"), keycloak_claims()))
    assert result.status_code == 200


@pytest.mark.parametrize("claims, reason", [
    # Without an Audience mapper Keycloak's aud holds only `account`.
    ({"aud": "account"}, "wrong_audience"),
    ({"iss": "https://sso.example.com/realms/other"}, "wrong_issuer"),
    # An ID token: payload typ ID, aud the client (here the API's own client, so only the type tells).
    ({"typ": "ID", "aud": "orders-api", "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ"},
     "wrong_type"),
    ({"typ": "Refresh"}, "wrong_type"),
    # Neither Bearer nor DPoP: the preset's claim rule.
    ({"typ": "Logout"}, "invalid_claims"),
    ({"typ": None}, "invalid_claims"),
], ids=["no-audience-mapper", "other-realm", "id-token", "refresh-token", "logout-token", "no-typ"])
def test_keycloak_tokens_of_another_audience_realm_or_type_are_refused(keycloak, clock, claims, reason):
    client = keycloak.client({"preset": "keycloak", "audiences": "orders-api"}, clock)
    refused(verify(client, token(keycloak.signers[0], KEYCLOAK_HEADER, keycloak_claims(**claims))), reason)


def test_a_dpop_bound_keycloak_token_passes_the_claim_rules_and_then_needs_its_proof(keycloak, clock):
    # Keycloak marks a DPoP-bound access token with typ DPoP and cnf.jkt (RFC 9449 section 6.1).
    client = keycloak.client({"preset": "keycloak", "audiences": "orders-api"}, clock)
    bound = keycloak_claims(typ="DPoP", cnf={"jkt": b64(b"k" * 32)})
    refused(verify(client, token(keycloak.signers[0], KEYCLOAK_HEADER, bound)), "dpop_required")


# --- Auth0 --------------------------------------------------------------------------------------
# Auth0's access token profiles: header typ JWT (Auth0 profile) or at+jwt (RFC 9068 profile); aud an
# array of the API identifier and the userinfo URL when openid was asked for; RBAC in `permissions`.

AUTH0 = "https://acme.eu.auth0.com/"
AUTH0_API = "https://api.example.com/orders"
AUTH0_SUB = "auth0|64b1f0c2a1d3e4f5a6b7c8d9"


@pytest.fixture(scope="module")
def auth0():
    return Vendor(AUTH0, f"{AUTH0}.well-known/jwks.json",
                  [RsaSigner(kid="NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg")],
                  {"x5t": "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg"})


def auth0_claims(**overrides):
    claims = {
        "iss": AUTH0, "sub": AUTH0_SUB, "aud": [AUTH0_API, f"{AUTH0}userinfo"], "azp": "Xk3fTq9LmP2sVb7RzW4yNc1D",
        "exp": NOW + 86_400, "iat": NOW - 10, "scope": "openid profile email read:orders",
        "permissions": ["read:orders", "write:orders"],
    }
    return with_overrides(claims, overrides)


def test_an_auth0_profile_token_passes_with_its_permissions_as_roles(auth0, clock):
    client = auth0.client({"preset": "auth0", "audiences": AUTH0_API}, clock)
    result = verify(client, token(auth0.signers[0], {"alg": "RS256", "typ": "JWT", "kid": ""}, auth0_claims()))
    passed(result, AUTH0_SUB, "read:orders,write:orders", "openid,profile,email,read:orders")


def test_an_auth0_rfc_9068_profile_token_passes(auth0, clock):
    client = auth0.client({"preset": "auth0", "audiences": AUTH0_API}, clock)
    claims = auth0_claims(azp=None, client_id="Xk3fTq9LmP2sVb7RzW4yNc1D", jti="73WakrfVbNJBaAmhQtEeDv")
    result = verify(client, token(auth0.signers[0], {"alg": "RS256", "typ": "at+jwt", "kid": ""}, claims))
    passed(result, AUTH0_SUB, "read:orders,write:orders", "openid,profile,email,read:orders")


def test_an_auth0_client_credentials_token_names_the_client(auth0, clock):
    client = auth0.client({"preset": "auth0", "audiences": AUTH0_API}, clock)
    claims = auth0_claims(sub="Xk3fTq9LmP2sVb7RzW4yNc1D@clients", aud=AUTH0_API, scope="read:orders",
                          gty="client-credentials", permissions=["read:orders"])
    result = verify(client, token(auth0.signers[0], {"alg": "RS256", "typ": "JWT", "kid": ""}, claims))
    passed(result, "Xk3fTq9LmP2sVb7RzW4yNc1D@clients", "read:orders", "read:orders")


@pytest.mark.parametrize("claims, reason", [
    # Another API's token: the userinfo URL alone is no audience of ours.
    ({"aud": ["https://api.example.com/billing", f"{AUTH0}userinfo"]}, "wrong_audience"),
    ({"iss": "https://other.eu.auth0.com/"}, "wrong_issuer"),
    # The issuer is compared exactly: Auth0's ends in a slash.
    ({"iss": AUTH0.rstrip("/")}, "wrong_issuer"),
    # An ID token: aud is the application's client ID.
    ({"aud": "Xk3fTq9LmP2sVb7RzW4yNc1D", "nonce": "n-0S6_WzA2Mj", "name": "Alice", "scope": None,
      "permissions": None}, "wrong_audience"),
], ids=["other-api", "other-tenant", "issuer-without-slash", "id-token"])
def test_auth0_tokens_of_another_audience_tenant_or_type_are_refused(auth0, clock, claims, reason):
    client = auth0.client({"preset": "auth0", "audiences": AUTH0_API}, clock)
    refused(verify(client, token(auth0.signers[0], {"alg": "RS256", "typ": "JWT", "kid": ""}, auth0_claims(**claims))),
            reason)


# --- Okta ---------------------------------------------------------------------------------------
# Okta custom authorization servers: header alg and kid only (no typ); ver 1, jti AT..., cid, uid,
# scp an array; groups by a custom claim.

OKTA = "https://acme.okta.com/oauth2/aus1a2b3c4d5e6f7g8h9"
OKTA_API = "https://api.example.com"
OKTA_HEADER = {"kid": "", "alg": "RS256"}


@pytest.fixture(scope="module")
def okta():
    return Vendor(OKTA, f"{OKTA}/v1/keys", [RsaSigner(kid="45js03w0djwedsw-Hq2mKqR3pDkVb8Xz1Y")])


def okta_claims(**overrides):
    claims = {
        "ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE", "iss": OKTA, "aud": OKTA_API,
        "sub": "alice@example.com", "iat": NOW - 10, "exp": NOW + 3600, "cid": "0oa1b2c3d4e5f6g7h8i9",
        "uid": "00u1a2b3c4d5e6f7g8h9", "scp": ["openid", "email", "orders:read"], "auth_time": NOW - 60,
        "groups": ["Everyone", "Orders-Admins"],
    }
    return with_overrides(claims, overrides)


def test_an_okta_access_token_without_a_header_type_passes_with_its_groups_and_scp(okta, clock):
    client = okta.client({"preset": "okta", "audiences": OKTA_API}, clock)
    result = verify(client, token(okta.signers[0], OKTA_HEADER, okta_claims()))
    passed(result, "alice@example.com", "Everyone,Orders-Admins", "openid,email,orders:read")


@pytest.mark.parametrize("claims, reason", [
    ({"aud": "api://default"}, "wrong_audience"),
    # The org authorization server's tokens are for Okta's own APIs.
    ({"iss": "https://acme.okta.com"}, "wrong_issuer"),
    # An ID token: aud is the client ID, jti ID..., no cid or scp.
    ({"aud": "0oa1b2c3d4e5f6g7h8i9", "jti": "ID.4eAWJOCMB3SX8XewDfVR", "cid": None, "uid": None, "scp": None,
      "amr": ["pwd"], "at_hash": "cpqKfdQA5eH891Ff5oJr_Q"}, "wrong_audience"),
    # scp is an array at Okta: an object there is no list of scopes.
    ({"scp": {"openid": True}}, "invalid_claims"),
], ids=["other-audience", "org-authorization-server", "id-token", "scp-not-a-list"])
def test_okta_tokens_of_another_audience_server_or_type_are_refused(okta, clock, claims, reason):
    client = okta.client({"preset": "okta", "audiences": OKTA_API}, clock)
    refused(verify(client, token(okta.signers[0], OKTA_HEADER, okta_claims(**claims))), reason)


# --- Microsoft Entra ID -------------------------------------------------------------------------
# v2.0 access tokens (accessTokenAcceptedVersion 2): header typ JWT; aud the API's client ID; iss
# ends in /v2.0; azp (v2.0 only); scp a space-separated string; app roles in `roles`; ver "2.0".

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA = f"https://login.microsoftonline.com/{TENANT}/v2.0"
ENTRA_API = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
ENTRA_CLIENT = "c3c1a2e5-8a1b-4d3e-9f0a-2b7c6d5e4f3a"
ENTRA_SUB = "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ"
ENTRA_HEADER = {"typ": "JWT", "alg": "RS256", "kid": ""}
ENTRA_KID = "i6lGk3FZzxRcUb2C3nEQ7syHJlY"


@pytest.fixture(scope="module")
def entra():
    # Entra's key set carries x5t (equal to kid), x5c and issuer beside each key.
    return Vendor(ENTRA, f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys", [RsaSigner(kid=ENTRA_KID)],
                  {"x5t": ENTRA_KID, "issuer": ENTRA})


def entra_claims(**overrides):
    claims = {
        "aud": ENTRA_API, "iss": ENTRA, "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3900,
        "aio": "AXQAi/8IAAAAtAaZLo3ChMif6KOnttRB7eBq4/DccQzjcJGxPYy/C3jDaNGxXd6wNIIVGRghNRnwJ1lOcAnNZcjvkoyrFxCttv33",
        "azp": ENTRA_CLIENT, "azpacr": "0", "name": "Abe Lincoln", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "abeli@example.com", "rh": "I", "roles": ["Orders.Admin"],
        "scp": "access_as_user Orders.Read", "sub": ENTRA_SUB, "tid": TENANT, "uti": "fqiBqXLPj0eQa82S-IYFAA",
        "ver": "2.0",
    }
    return with_overrides(claims, overrides)


def test_an_entra_v2_access_token_passes_with_its_app_roles_and_scp(entra, clock):
    client = entra.client({"preset": "entra", "audiences": ENTRA_API}, clock)
    result = verify(client, token(entra.signers[0], ENTRA_HEADER, entra_claims()))
    passed(result, ENTRA_SUB, "Orders.Admin", "access_as_user,Orders.Read")


def test_an_entra_app_only_token_carries_roles_and_no_scp(entra, clock):
    client = entra.client({"preset": "entra", "audiences": ENTRA_API}, clock)
    claims = entra_claims(scp=None, name=None, preferred_username=None, azpacr="1", idtyp="app",
                          roles=["Orders.ReadWrite.All"], sub="7d3e2f1a-0b9c-4d8e-a7f6-5e4d3c2b1a09")
    passed(verify(client, token(entra.signers[0], ENTRA_HEADER, claims)), "7d3e2f1a-0b9c-4d8e-a7f6-5e4d3c2b1a09",
           "Orders.ReadWrite.All", "")


def test_an_x5t_beside_the_kid_is_information_only(entra, clock):
    # v1.0 tokens send x5t equal to kid; a header that carries it is still picked by kid alone.
    client = entra.client({"preset": "entra", "audiences": ENTRA_API}, clock)
    result = verify(client, token(entra.signers[0], dict(ENTRA_HEADER, x5t=ENTRA_KID), entra_claims()))
    passed(result, ENTRA_SUB, "Orders.Admin", "access_as_user,Orders.Read")
    refused(verify(client, token(entra.signers[0], dict(ENTRA_HEADER, x5t="not-a-thumbprint"), entra_claims())),
            "unsupported_header")


@pytest.mark.parametrize("header, claims, reason", [
    # A token for Microsoft Graph, not for our API.
    ({}, {"aud": "00000003-0000-0000-c000-000000000000"}, "wrong_audience"),
    # A v1.0 token (accessTokenAcceptedVersion null or 1): another issuer, appid instead of azp.
    ({"x5t": ENTRA_KID}, {"iss": f"https://sts.windows.net/{TENANT}/", "ver": "1.0", "azp": None,
                          "appid": ENTRA_CLIENT}, "wrong_issuer"),
    ({}, {"ver": "1.0"}, "invalid_claims"),
    # A v2.0 ID token of the API's own app registration: same aud and ver, but no azp.
    ({}, {"azp": None, "azpacr": None, "scp": None, "roles": None, "nonce": "n-0S6_WzA2Mj", "sid": guid()},
     "invalid_claims"),
    ({"typ": "at+jwt"}, {}, "wrong_type"),
], ids=["graph-token", "v1-token", "v1-version-claim", "id-token", "header-type-not-entras"])
def test_entra_tokens_of_another_audience_version_or_type_are_refused(entra, clock, header, claims, reason):
    client = entra.client({"preset": "entra", "audiences": ENTRA_API}, clock)
    refused(verify(client, token(entra.signers[0], dict(ENTRA_HEADER, **header), entra_claims(**claims))), reason)


# --- Amazon Cognito -----------------------------------------------------------------------------
# User pool access tokens: header kid and alg only; no aud, the app client in client_id; token_use
# access (ID tokens: id, with aud); groups in cognito:groups; ID and access tokens signed by different keys.

COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
COGNITO_CLIENT = "7m1234abcdefghijklmnopqrst"
COGNITO_SUB = "a1b2c3d4-5678-90ab-cdef-1234567890ab"
COGNITO_HEADER = {"kid": "", "alg": "RS256"}


@pytest.fixture(scope="module")
def cognito():
    return Vendor(COGNITO, f"{COGNITO}/.well-known/jwks.json",
                  [RsaSigner(kid="bGpL3l0tX2kM9yQ8r1vW6sT4uH7jN5cB0aZ3eD8fG1k="),
                   RsaSigner(kid="Q2hQ7nJ4mR8sV1wX5yZ3aB6cD9eF2gH4iJ7kL0mN3oP=")])


def cognito_claims(**overrides):
    claims = {
        "sub": COGNITO_SUB, "device_key": f"eu-west-1_{guid()}", "cognito:groups": ["orders-admin"],
        "iss": COGNITO, "version": 2, "client_id": COGNITO_CLIENT, "origin_jti": guid(), "event_id": guid(),
        "token_use": "access", "scope": "aws.cognito.signin.user.admin openid orders/read", "auth_time": NOW - 60,
        "exp": NOW + 3600, "iat": NOW - 10, "jti": guid(), "username": "alice",
    }
    return with_overrides(claims, overrides)


def test_a_cognito_access_token_passes_by_its_client_id_with_its_groups(cognito, clock):
    client = cognito.client({"preset": "cognito", "audiences": COGNITO_CLIENT}, clock)
    result = verify(client, token(cognito.signers[0], COGNITO_HEADER, cognito_claims()))
    passed(result, COGNITO_SUB, "orders-admin", "aws.cognito.signin.user.admin,openid,orders/read")


def test_a_cognito_client_credentials_token_names_the_app_client(cognito, clock):
    client = cognito.client({"preset": "cognito", "audiences": COGNITO_CLIENT}, clock)
    claims = cognito_claims(sub=COGNITO_CLIENT, username=None, device_key=None, origin_jti=None, event_id=None,
                            auth_time=None, scope="orders/read orders/write", **{"cognito:groups": None})
    passed(verify(client, token(cognito.signers[0], COGNITO_HEADER, claims)), COGNITO_CLIENT, "",
           "orders/read,orders/write")


def cognito_id_token(**overrides):
    """A Cognito ID token: token_use id, aud the app client, no client_id; signed by the ID token key."""
    claims = cognito_claims(token_use="id", aud=COGNITO_CLIENT, client_id=None, scope=None, username=None,
                            device_key=None, email="alice@example.com", email_verified=True,
                            **{"cognito:username": "alice"})
    return with_overrides(claims, overrides)


@pytest.mark.parametrize("signer, claims, reason", [
    (0, cognito_claims(client_id="1example23456789abcdefghij"), "wrong_audience"),
    # An aud naming our client does not stand in for client_id (Cognito puts it in ID tokens).
    (0, cognito_claims(client_id=None, aud=COGNITO_CLIENT), "invalid_claims"),
    (0, cognito_claims(iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other1234"), "wrong_issuer"),
    (1, cognito_id_token(), "wrong_type"),
    # An ID token that also names the client in client_id: still not an access token.
    (1, cognito_id_token(client_id=COGNITO_CLIENT), "wrong_type"),
    (0, cognito_claims(token_use=None), "invalid_claims"),
    (0, cognito_claims(token_use="refresh"), "wrong_type"),
    (0, cognito_claims(token_use="access_token"), "invalid_claims"),
], ids=["other-app-client", "aud-instead-of-client-id", "other-pool", "id-token", "id-token-with-client-id",
        "no-token-use", "refresh-token-use", "other-token-use"])
def test_cognito_tokens_of_another_client_pool_or_token_use_are_refused(cognito, clock, signer, claims, reason):
    client = cognito.client({"preset": "cognito", "audiences": COGNITO_CLIENT}, clock)
    refused(verify(client, token(cognito.signers[signer], COGNITO_HEADER, claims)), reason)


def test_a_cognito_header_with_a_type_is_not_cognitos(cognito, clock):
    client = cognito.client({"preset": "cognito", "audiences": COGNITO_CLIENT}, clock)
    refused(verify(client, token(cognito.signers[0], dict(COGNITO_HEADER, typ="JWT"), cognito_claims())), "wrong_type")
