"""A small DPoP client (RFC 9449) for jwtgate: a key pair, proofs, and curl commands to try them.

    python examples/dpop_client.py login http://127.0.0.1:8080 demo < password.txt
    python examples/dpop_client.py curl http://127.0.0.1:8080/api/protected/
    python examples/dpop_client.py proof POST http://127.0.0.1:8080/api/auth/refresh

`login` makes a key (kept in dpop-key.pem, mode 0600, unless --key names another file), signs in
with a proof and keeps the tokens in dpop-tokens.json. `curl` prints a command for one request:
its proof is good once, for that method and URL, for a minute. Needs cryptography and python-jose,
which jwtgate itself installs. Tests import DpopKey from here.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import shlex
import sys
import time
import urllib.request

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(number, length=None):
    return b64url(number.to_bytes(length or (number.bit_length() + 7) // 8, "big"))


class DpopKey:
    """A client key pair (ES256 or RS256) that signs DPoP proofs."""

    def __init__(self, private_key):
        self.private_key = private_key
        numbers = private_key.public_key().public_numbers()
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            self.alg = "ES256"
            self.jwk = {"kty": "EC", "crv": "P-256", "x": _int_b64(numbers.x, 32), "y": _int_b64(numbers.y, 32)}
        else:
            self.alg = "RS256"
            self.jwk = {"kty": "RSA", "e": _int_b64(numbers.e), "n": _int_b64(numbers.n)}
        pem = self.pem().decode("ascii")
        self._signer = jwk.construct(pem, self.alg)

    @classmethod
    def generate(cls, alg="ES256"):
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if alg == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        raise ValueError("alg must be ES256 or RS256")

    @classmethod
    def load(cls, path):
        with open(path, "rb") as handle:
            return cls(serialization.load_pem_private_key(handle.read(), password=None))

    def pem(self):
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def save(self, path):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.pem())

    @property
    def thumbprint(self):
        """RFC 7638 SHA-256 thumbprint: the `cnf.jkt` of tokens bound to this key."""
        canonical = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def sign(self, header, claims):
        """A compact JWS of exactly this header and these claims, signed with this key."""
        signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}"
        return f"{signing_input}.{b64url(self._signer.sign(signing_input.encode('ascii')))}"

    def proof(self, method, url, access_token=None, *, iat=None, jti=None, nonce=None):
        """A DPoP proof for one request: `htu` is the URL without query or fragment; `nonce` the server's
        last DPoP-Nonce, where it asks for one (RFC 9449 sections 8 and 9)."""
        claims = {"jti": jti or secrets.token_urlsafe(16), "htm": method, "htu": url.split("?")[0].split("#")[0],
                  "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        return self.sign({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}, claims)


def _post(url, body, proof):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "DPoP": proof})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _key(path, alg):
    if os.path.exists(path):
        return DpopKey.load(path)
    key = DpopKey.generate(alg)
    key.save(path)
    return key


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key", default="dpop-key.pem", help="the client's private key (made when missing)")
    parser.add_argument("--tokens", default="dpop-tokens.json", help="where login and refresh keep the tokens")
    parser.add_argument("--alg", default="ES256", choices=("ES256", "RS256"), help="for a new key")
    commands = parser.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login", help="sign in with a proof (password on stdin)")
    login.add_argument("gateway", help="e.g. http://127.0.0.1:8080")
    login.add_argument("username")
    refresh = commands.add_parser("refresh", help="a new DPoP-bound token pair, with a proof")
    refresh.add_argument("gateway")
    curl = commands.add_parser("curl", help="print a curl command for one request with a fresh proof")
    curl.add_argument("url")
    curl.add_argument("--method", default="GET")
    curl.add_argument("--nonce", help="the DPoP-Nonce the gateway last sent, when it asks for one")
    proof = commands.add_parser("proof", help="print a proof (with ath when there is a token)")
    proof.add_argument("method")
    proof.add_argument("url")
    proof.add_argument("--nonce", help="the DPoP-Nonce the gateway last sent, when it asks for one")
    args = parser.parse_args(argv)

    key = _key(args.key, args.alg)
    if args.command in ("login", "refresh"):
        url = args.gateway.rstrip("/") + f"/api/auth/{args.command}"
        if args.command == "login":
            body = {"username": args.username, "password": sys.stdin.readline().rstrip("\n")}
        else:
            with open(args.tokens) as handle:
                body = {"refresh_token": json.load(handle)["refresh_token"]}
        tokens = _post(url, body, key.proof("POST", url))
        descriptor = os.open(args.tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(tokens, handle)
        print(f"token_type: {tokens['token_type']}, bound to key {key.thumbprint}; tokens in {args.tokens}")
        return 0
    token = None
    if os.path.exists(args.tokens):
        with open(args.tokens) as handle:
            token = json.load(handle)["access_token"]
    if args.command == "proof":
        print(key.proof(args.method, args.url, token, nonce=args.nonce))
        return 0
    if token is None:
        parser.error(f"no {args.tokens}: run login first")
    proof = key.proof(args.method, args.url, token, nonce=args.nonce)
    print(" ".join(["curl", "-i", "-X", shlex.quote(args.method), "-H", shlex.quote(f"Authorization: DPoP {token}"),
                    "-H", shlex.quote(f"DPoP: {proof}"), shlex.quote(args.url)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
