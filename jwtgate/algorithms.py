"""Verification key objects for every JWS algorithm we accept, all with python-jose's `verify(message, signature)`.

python-jose verifies RS*, ES* and HS*; it has no PS* and no EdDSA, so those two are built here on
`cryptography` (which python-jose[cryptography] already installs), behind the same interface.
"""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from jose import jwk

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
# RFC 8037 section 3.1: EdDSA names the signature scheme, the key's `crv` the curve. We verify Ed25519 only.
OKP_ALGORITHMS = {"Ed25519": "EdDSA"}
_PSS_HASHES = {"PS256": hashes.SHA256, "PS384": hashes.SHA384, "PS512": hashes.SHA512}
_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64


def b64url_bytes(value):
    """Decode a JWK member (unpadded base64url); raise ValueError for anything else."""
    if not isinstance(value, str) or not value or "=" in value:
        raise ValueError("not a base64url string")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError("not a base64url string") from None


class PssKey:
    """An RSA public key for one of PS256/384/512: RSASSA-PSS with MGF1 of the same hash, salt as long as
    the hash (RFC 7518 section 3.5)."""

    def __init__(self, public_key, alg):
        self._key = public_key
        self._hash = _PSS_HASHES[alg]()
        self._padding = padding.PSS(mgf=padding.MGF1(self._hash), salt_length=self._hash.digest_size)
        self._length = (public_key.key_size + 7) // 8

    def verify(self, message, signature):
        # RFC 8017 section 8.1.2 step 1: a signature is exactly as long as the modulus.
        if len(signature) != self._length:
            return False
        try:
            self._key.verify(signature, message, self._padding, self._hash)
        except InvalidSignature:
            return False
        return True


class Ed25519Key:
    """An Ed25519 public key for EdDSA (RFC 8037 section 3.1)."""

    def __init__(self, public_key):
        self._key = public_key

    def verify(self, message, signature):
        # RFC 8032 section 5.1.7: the signature is 64 octets; anything else fails before the arithmetic.
        if len(signature) != _ED25519_SIGNATURE_BYTES:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def construct(member, alg):
    """The verification key object for a public JWK and the one algorithm it is bound to."""
    if alg in _PSS_HASHES:
        numbers = rsa.RSAPublicNumbers(int.from_bytes(b64url_bytes(member["e"]), "big"),
                                       int.from_bytes(b64url_bytes(member["n"]), "big"))
        return PssKey(numbers.public_key(), alg)
    if alg == "EdDSA":
        x = b64url_bytes(member["x"])
        if len(x) != _ED25519_KEY_BYTES:
            raise ValueError("Ed25519 key is not 32 bytes")
        return Ed25519Key(ed25519.Ed25519PublicKey.from_public_bytes(x))
    return jwk.construct(member, alg)
