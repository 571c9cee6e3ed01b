"""A real OpenID provider for the tests: oidc-provider (examples/oidc-provider/provider.mjs) on a loopback port.

It issues RFC 9068 JWT access tokens by the client-credentials grant for a resource the client names
(RFC 8707), signed with its RS256 or ES256 key. The keys are generated here into a private JWKS file;
rotate() adds a new one and restarts the provider on the same port. Needs node and `npm ci` (make test
runs it); a missing one fails with a message saying so.
"""

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from launcher.oidc_demo import AUDIENCE, SCOPES, SCRIPT, private_jwk
from tests.services import _tail, _wait, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


class OidcProvider:
    """One oidc-provider process with a confidential client allowed the client-credentials grant."""

    def __init__(self, directory, *, resources=(AUDIENCE,), scopes=SCOPES, roles="user", ttl_seconds=300,
                 client_id="jwtgate-tests"):
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Another spelling of this origin (localhost, a trailing slash) may be set before start().
        self.issuer = self.url
        self.resources = tuple(resources)
        self.scopes = scopes
        self.roles = roles
        self.ttl_seconds = ttl_seconds
        self.client_id = client_id
        self.client_secret = secrets.token_urlsafe(24)
        self.jwks_path = self.directory / "jwks.json"
        self.log_path = self.directory / "provider.log"
        # Newest first: the provider signs with the first key of each algorithm.
        self.keys = [private_jwk("RS256"), private_jwk("ES256")]
        self.process = None
        self.metadata = None

    def _write_keys(self):
        self.jwks_path.write_text(json.dumps({"keys": self.keys}))
        self.jwks_path.chmod(0o600)

    def _command(self):
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is missing: run 'apt-get install nodejs npm'")
        if not (ROOT / "node_modules" / "oidc-provider" / "package.json").exists():
            raise RuntimeError("node_modules/oidc-provider is missing: run 'npm ci' (make test does)")
        command = [node, str(SCRIPT), "--port", str(self.port), "--issuer", self.issuer, "--jwks", str(self.jwks_path),
                   "--scopes", self.scopes, "--roles", self.roles, "--ttl", str(self.ttl_seconds)]
        for resource in self.resources:
            command += ["--resource", resource]
        return command

    def start(self):
        """Start on self.port with the keys in self.keys; wait until discovery answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_keys()
        environ = {**os.environ, "OIDC_CLIENT_ID": self.client_id, "OIDC_CLIENT_SECRET": self.client_secret}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=environ, cwd=ROOT)

        def ready():
            self.metadata = self.discovery()
            return self.metadata["issuer"] == self.issuer

        _wait("oidc-provider", self.process, ready, self.log_path)
        return self

    def stop(self):
        stop_process(self.process)
        self.process = None

    def restart(self):
        self.stop()
        return self.start()

    def log_tail(self, lines=30):
        return _tail(self.log_path, lines)

    def discovery(self):
        """The OpenID Connect Discovery document, fetched."""
        response = httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
        return response.json()

    def jwks(self):
        """The public JWKS, fetched from the discovery document's jwks_uri."""
        response = httpx.get(self.discovery()["jwks_uri"], timeout=5)
        response.raise_for_status()
        return response.json()

    def kid(self, alg="RS256"):
        """The kid that signs tokens of alg now."""
        return next(key["kid"] for key in self.keys if key["alg"] == alg)

    def token_response(self, scope=SCOPES, resource=None, alg="RS256", client_secret=None):
        """The raw answer to a client-credentials token request (RFC 6749 section 4.4, RFC 8707 resource)."""
        form = {"grant_type": "client_credentials", "scope": scope, "resource": resource or self.resources[0],
                "signing_alg": alg}
        return httpx.post(self.metadata["token_endpoint"], data=form, timeout=10,
                          auth=(self.client_id, client_secret or self.client_secret))

    def token(self, scope=SCOPES, resource=None, alg="RS256"):
        """A JWT access token for resource (default: the first one), signed with the alg key."""
        response = self.token_response(scope, resource, alg)
        if response.status_code != 200:
            raise RuntimeError(f"token request refused: {response.status_code} {response.text}\n{self.log_tail()}")
        return response.json()["access_token"]

    def rotate(self, alg="RS256", keep_old=True):
        """Add a new alg key that signs from now on (dropping the old one unless keep_old); restart on the same port.

        Returns the new kid.
        """
        key = private_jwk(alg)
        if not keep_old:
            self.keys = [old for old in self.keys if old["alg"] != alg]
        self.keys.insert(0, key)
        self.restart()
        return key["kid"]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """A real OpenID provider for the whole session; tests that rotate keys or stop it start their own."""
    provider = OidcProvider(tmp_path_factory.mktemp("oidc")).start()
    yield provider
    provider.stop()


def providers_file(path, stack, oidc, **oidc_fields):
    """The two providers as a user writes them, both found by discovery: ours by RFC 8414 over its socket."""
    entry = {"issuer": oidc.issuer, "audiences": [AUDIENCE], **oidc_fields}
    lines = ["[providers.jwtgate]", 'preset = "jwtgate"', f'issuer = "{stack.issuer}"', 'audiences = ["jwtgate-api"]',
             'metadata = "oauth"', f'socket = "{stack.socket("auth_api")}"', "", "[providers.oidc]"]
    lines += [f"{name} = {json.dumps(value)}" for name, value in entry.items()]
    path.write_text("\n".join(lines) + "\n")
