"""Protected resource metadata (RFC 9728) through the real Nginx, and a real client's discovery.

The client is the `mcp` package's OAuth client (Model Context Protocol clients find their authorization
server this way): from our 401, through our metadata and the OpenID provider's discovery document
(oidc-provider, tests/oidc/provider.mjs), to a token it then gets through the gateway with.
"""

import asyncio
import os
import re

import httpx2
import pytest
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider

from launcher.stack import Stack
from tests.conftest import RunningStack, free_port
from tests.oidc_support import SCOPES, OidcProvider, providers_file

WELL_KNOWN = "/.well-known/oauth-protected-resource"
SPOOFED = {"X-User-Id": "mallory", "X-User-Roles": "admin", "X-User-Claims": "e30"}


def resource_metadata(response):
    """The resource_metadata URL of a 401's challenge (RFC 9728 section 5.1)."""
    [value] = response.headers.get_list("www-authenticate")
    match = re.search(r'resource_metadata="([^"]+)"', value)
    assert match, value
    return match.group(1)


def assert_public_document(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "max-age=300"
    assert not [name for name in response.headers if name.startswith("x-user") or name == "x-auth-error"]
    assert "www-authenticate" not in response.headers
    return response.json()


@pytest.fixture(scope="module")
def oidc_gateway(tmp_path_factory):
    """The stack trusting our auth API and the OpenID provider, which issues tokens for the gateway's origin."""
    directory = tmp_path_factory.mktemp("rfc9728")
    stack = Stack(directory / "stack", listen=f"127.0.0.1:{free_port()}", environ={
        **os.environ,
        "VALIDATOR_PROVIDERS_FILE": str(directory / "providers.toml"),
        "VALIDATOR_SCOPES_SUPPORTED": SCOPES,
    })
    # RFC 8707: the client asks for a token for the resource the metadata names, the gateway's origin.
    oidc = OidcProvider(directory / "oidc", resources=(stack.url,)).start()
    providers_file(directory / "providers.toml", stack, oidc, audiences=[stack.url])
    try:
        stack.start()
    except Exception:
        stack.stop()
        oidc.stop()
        raise
    running = RunningStack(stack)
    yield running, oidc
    running.close()
    oidc.stop()


def test_a_401_names_the_metadata_which_is_public_and_never_reflects_the_host(gateway):
    before = len(gateway.backend_hits())
    refused = gateway.client.get("/api/protected/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        f'Bearer realm="jwtgate", resource_metadata="{gateway.url}{WELL_KNOWN}"')
    url = resource_metadata(refused)
    # No token needed, a bad one changes nothing, and the identity headers a client sends go nowhere.
    answer = gateway.client.get(url, headers={**SPOOFED, "Authorization": "Bearer not.a.token", "Host": "evil.example"})
    body = assert_public_document(answer)
    assert body["resource"] == gateway.url
    assert body["bearer_methods_supported"] == ["header"]
    assert body["dpop_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert body["dpop_bound_access_tokens_required"] is False
    assert len(gateway.backend_hits()) == before


def test_the_path_suffixed_form_describes_each_protected_resource(gateway):
    body = assert_public_document(gateway.client.get(f"{WELL_KNOWN}/api/protected"))
    assert body["resource"] == f"{gateway.url}/api/protected"
    assert gateway.client.get(f"{WELL_KNOWN}/api/%20x").status_code == 404
    assert gateway.client.head(WELL_KNOWN).status_code == 200
    assert gateway.client.post(WELL_KNOWN, content=b"{}").status_code == 403


def test_the_metadata_names_the_configured_issuers(oidc_gateway):
    gateway, oidc = oidc_gateway
    url = resource_metadata(gateway.client.get("/api/protected/x"))
    body = assert_public_document(gateway.client.get(url))
    # Both issuers, in the providers file's order: our auth API's publishes RFC 8414 metadata too.
    assert body["authorization_servers"] == [gateway.issuer, oidc.issuer]
    assert body["scopes_supported"] == SCOPES.split()
    assert body["resource"] == gateway.url


class MemoryStorage:
    """The mcp client's TokenStorage, in memory."""

    def __init__(self):
        self.tokens = self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def discover_and_call(server_url, oidc):
    """What an MCP client does on its own: GET, 401, discovery, a token, GET again. Returns (answer, requests)."""
    sent = []

    async def record(request):
        sent.append((request.method, str(request.url)))

    auth = ClientCredentialsOAuthProvider(server_url, MemoryStorage(), oidc.client_id, oidc.client_secret,
                                          issuer=oidc.issuer)
    # trust_env off: no proxy from the environment, every request goes to 127.0.0.1.
    async with httpx2.AsyncClient(auth=auth, trust_env=False, timeout=10,
                                  event_hooks={"request": [record]}) as client:
        answer = await client.get(server_url)
        return answer.status_code, answer.json(), sent


def test_a_real_client_goes_from_our_401_to_the_providers_metadata_and_comes_back_with_a_token(oidc_gateway):
    gateway, oidc = oidc_gateway
    server_url = f"{gateway.url}/api/protected/tools"
    status, body, sent = asyncio.run(discover_and_call(server_url, oidc))
    assert status == 200, body
    assert body["userId"] == oidc.client_id and body["scopes"] == SCOPES.split()
    assert sent == [
        ("GET", server_url),
        # The challenge's resource_metadata, taken before the client's own guess (.../api/protected/tools).
        ("GET", f"{gateway.url}{WELL_KNOWN}"),
        # authorization_servers[0]: RFC 8414 first, which oidc-provider does not serve, then OpenID discovery.
        ("GET", f"{oidc.issuer}/.well-known/oauth-authorization-server"),
        ("GET", f"{oidc.issuer}/.well-known/openid-configuration"),
        ("POST", oidc.metadata["token_endpoint"]),
        ("GET", server_url),
    ]
