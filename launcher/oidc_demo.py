"""The OpenID provider demo beside the gateway (`make demo`): oidc-provider on a loopback port.

examples/oidc-provider/provider.mjs with keys made at each start into $DATA/oidc-demo/, one confidential
client allowed the client-credentials grant, and a providers file naming our auth API and the demo.
"""

import ipaddress
import json
import os
import secrets
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jwtgate.dpop import b64url

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "oidc-provider" / "provider.mjs"
CLIENT_ID = "jwtgate-demo"
# RFC 8707 resource indicators the demo client may ask for: ours, and another API's (refused by the gateway).
AUDIENCE = "https://api.jwtgate.example/"
OTHER_AUDIENCE = "https://other.jwtgate.example/"
SCOPES = "api:read api:write"
ROLES = "user"


def _int(value, length=None):
    return b64url(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


def private_jwk(alg):
    """A new private signing JWK with a random kid: RSA 2048 for RS256, P-256 for ES256."""
    kid = secrets.token_hex(8)
    if alg == "RS256":
        numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        public = numbers.public_numbers
        return {"kty": "RSA", "use": "sig", "alg": alg, "kid": kid, "n": _int(public.n), "e": _int(public.e),
                "d": _int(numbers.d), "p": _int(numbers.p), "q": _int(numbers.q), "dp": _int(numbers.dmp1),
                "dq": _int(numbers.dmq1), "qi": _int(numbers.iqmp)}
    if alg == "ES256":
        numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
        public = numbers.public_numbers
        # RFC 7518 section 6.2.1.2: coordinates are the full field size, 32 bytes for P-256.
        return {"kty": "EC", "use": "sig", "alg": alg, "kid": kid, "crv": "P-256", "x": _int(public.x, 32),
                "y": _int(public.y, 32), "d": _int(numbers.private_value, 32)}
    raise ValueError(f"no key type for {alg}")


def loopback_problem(listen):
    """Why `listen` (host:port) is not a loopback address with a port, or None."""
    host, _, port = listen.rpartition(":")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{listen[:60]!r} is not a loopback address with a port (e.g. 127.0.0.1:9090)"
    return None


class OidcDemo:
    """The demo provider's files, command and client; Stack starts and stops its process."""

    def __init__(self, directory, listen="127.0.0.1:9090"):
        self.directory = Path(directory)
        self.listen = listen
        self.issuer = f"http://{listen}"
        self.client_id = CLIENT_ID
        # Fresh at each start, like the demo users' passwords.
        self.client_secret = secrets.token_urlsafe(24)
        self.jwks_path = self.directory / "jwks.json"
        self.providers_path = self.directory / "providers.toml"

    @property
    def discovery_url(self):
        return f"{self.issuer}/.well-known/openid-configuration"

    def problems(self):
        """What stops the demo from starting: (setting, message) pairs."""
        found = []
        problem = loopback_problem(self.listen)
        if problem:
            found.append(("JWTGATE_OIDC_DEMO_LISTEN", problem))
        if shutil.which("node") is None:
            found.append(("JWTGATE_OIDC_DEMO_LISTEN", "the demo needs node: run 'apt-get install nodejs npm'"))
        elif not SCRIPT.exists():
            # node_modules/oidc-provider and the script live in a source checkout, not in the wheel.
            found.append(("JWTGATE_OIDC_DEMO_LISTEN", "the demo runs from a source checkout (with 'npm ci')"))
        elif not (ROOT / "node_modules" / "oidc-provider" / "package.json").exists():
            found.append(("JWTGATE_OIDC_DEMO_LISTEN", "the demo needs node_modules/oidc-provider: run 'npm ci'"))
        return found

    def prepare(self, auth_api_socket, auth_api_issuer):
        """New signing keys (RS256 and ES256, private, 0600) and the providers file: our auth API and the demo."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.jwks_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "w") as keys:
            json.dump({"keys": [private_jwk("RS256"), private_jwk("ES256")]}, keys)
        self.providers_path.write_text("\n".join([
            "# Written by `make demo` at each start: our auth API (its RFC 8414 metadata over its unix socket)",
            "# and the OpenID provider demo, both found by discovery.",
            "[providers.jwtgate]",
            'preset = "jwtgate"',
            f"issuer = {json.dumps(auth_api_issuer)}",
            'audiences = ["jwtgate-api"]',
            'metadata = "oauth"',
            f"socket = {json.dumps(auth_api_socket)}",
            "",
            "[providers.oidc-demo]",
            f"issuer = {json.dumps(self.issuer)}",
            f"audiences = {json.dumps([AUDIENCE])}",
            "",
        ]))

    def command(self):
        host, _, port = self.listen.rpartition(":")
        return [shutil.which("node") or "node", str(SCRIPT), "--host", host.strip("[]"), "--port", port,
                "--issuer", self.issuer, "--jwks", str(self.jwks_path), "--scopes", SCOPES, "--roles", ROLES,
                "--resource", AUDIENCE, "--resource", OTHER_AUDIENCE]

    def environ(self, base):
        """The script's environment: the client's credentials never go on its command line."""
        return {**base, "OIDC_CLIENT_ID": self.client_id, "OIDC_CLIENT_SECRET": self.client_secret}
