"""Signed identity assertions: a backend's proof that a request came through the gateway.

When VALIDATOR_ASSERTION_AUDIENCE is set, every allowed request gets a short-lived
ES256 JWS naming the user, their roles and scopes, and the request's method and
URI as Nginx saw them. The key pair lives in the data directory: the private key
(0600) for the validator's workers, the public JWKS for backends.
"""

import base64
import hashlib
import json
import os
import secrets
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws

from jwtgate.files import locked, write_atomically

ASSERTION_TYPE = "jwtgate-assertion+jwt"
ISSUER = "jwtgate-gateway"
PRIVATE_FILE = "es256.pem"
JWKS_FILE = "jwks.json"


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key):
    """The P-256 public key as a JWK, its RFC 7638 thumbprint as kid."""
    numbers = public_key.public_numbers()
    members = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
               "y": _b64(numbers.y.to_bytes(32, "big"))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return {**members, "use": "sig", "alg": "ES256", "kid": _b64(hashlib.sha256(canonical).digest())}


def load_or_create_key(directory):
    """The private key in directory, made (with its public JWKS) by the first worker to ask."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, PRIVATE_FILE)
    with locked(directory):
        if not os.path.exists(path):
            private = ec.generate_private_key(ec.SECP256R1())
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            write_atomically(path, pem)
            document = {"keys": [public_jwk(private.public_key())]}
            write_atomically(os.path.join(directory, JWKS_FILE), json.dumps(document, indent=2).encode(), 0o644)
        with open(path, "rb") as handle:
            return serialization.load_pem_private_key(handle.read(), password=None)


class AssertionSigner:
    """Signs one assertion per allowed request with a key built once."""

    def __init__(self, private_key, *, audience, ttl, clock=time.time):
        self._jwk = public_jwk(private_key.public_key())
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        self._key = jwk.construct(pem, "ES256")
        self._headers = {"kid": self._jwk["kid"], "typ": ASSERTION_TYPE}
        self._audience = audience
        self._ttl = ttl
        self._clock = clock

    def sign(self, identity, method, uri):
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "aud": self._audience,
            "sub": identity.sub,
            "roles": list(identity.roles),
            "scope": " ".join(identity.scopes),
            "method": method,
            "uri": uri,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return jws.sign(claims, self._key, headers=self._headers, algorithm="ES256")

    def jwks(self):
        return {"keys": [dict(self._jwk)]}
