"""Test helpers that forge and sign tokens: valid ones and every kind of wrong one."""

import base64
import hashlib
import hmac
import json
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk

ISSUER = "jwtgate"
AUDIENCE = "jwtgate-api"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_json(value):
    return value if isinstance(value, (bytes, str)) else json.dumps(value, separators=(",", ":"))


class RsaSigner:
    """An RSA key pair with its JWK, able to sign anything we ask."""

    def __init__(self, kid=None, bits=2048, private=None):
        self.private = private or rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        numbers = self.private.public_key().public_numbers()
        self.kid = kid or secrets.token_hex(8)
        self.jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64(numbers.e.to_bytes(3, "big")),
        }
        self._key = jwk.construct(self.pem.decode(), "RS256")

    @classmethod
    def from_pem(cls, pem, kid):
        """The signer of a running stack, from its key file."""
        return cls(kid=kid, private=serialization.load_pem_private_key(pem, password=None))

    def jwks(self):
        return {"keys": [self.jwk]}

    def sign_input(self, signing_input):
        return b64(self._key.sign(signing_input.encode()))


def with_overrides(base, overrides):
    """base with each override set, or removed where its value is None."""
    merged = dict(base)
    for name, value in overrides.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def claims(now, **overrides):
    """A complete, valid claim set at time `now`; overrides replace or (with None) remove claims."""
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": int(now),
        "exp": int(now) + 900,
        "jti": secrets.token_hex(8),
        "roles": ["user"],
        "scope": "orders:read",
    }
    return with_overrides(base, overrides)


def header(signer, **overrides):
    base = {"alg": "RS256", "typ": "at+jwt", "kid": signer.kid}
    return with_overrides(base, overrides)


def rs256(signer, claim_set, head=None):
    """An RS256 signature over claim_set (a dict, or raw JSON text) and any header, default or given."""
    head = header(signer) if head is None else head
    signing_input = f"{b64(raw_json(head))}.{b64(raw_json(claim_set))}"
    return f"{signing_input}.{signer.sign_input(signing_input)}"


def hs256(secret, claim_set, head=None):
    """HS256 over arbitrary header and claims with any secret bytes (a public key PEM included)."""
    head = {"alg": "HS256", "typ": "at+jwt"} if head is None else head
    signing_input = f"{b64(raw_json(head))}.{b64(raw_json(claim_set))}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned(head, claim_set, signature=""):
    return f"{b64(raw_json(head))}.{b64(raw_json(claim_set))}.{signature}"

