"""Forging tools beyond tests/minting.py: other algorithms, public-key encodings, certificates."""

import base64
import datetime
import hashlib
import hmac
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.minting import b64, raw_json

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def token(head, claim_set, sign):
    """A compact JWS over any header and claims (dicts or raw JSON text); sign(bytes) gives the signature."""
    signing_input = f"{b64(raw_json(head))}.{b64(raw_json(claim_set))}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hmac_signer(secret, alg="HS256"):
    return lambda data: hmac.new(secret, data, _HMAC[alg]).digest()


def rsa_signer(private, alg):
    """RSxxx (PKCS#1 v1.5) or PSxxx (PSS) with an RSA private key."""
    digest = _HASHES[alg[2:]]()
    if alg.startswith("PS"):
        scheme = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    else:
        scheme = padding.PKCS1v15()
    return lambda data: private.sign(data, scheme, digest)


def ec_signer(private):
    """ES256 with a P-256 key: JOSE wants r || s, not DER (RFC 7518 section 3.4)."""

    def sign(data):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def ed25519_signer(private):
    return private.sign


def public_key_from_jwk(member):
    def number(value):
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    return rsa.RSAPublicNumbers(number(member["e"]), number(member["n"])).public_key()


def public_key_encodings(member):
    """The stack's public key in every form an attacker might feed to HMAC as the secret."""
    key = public_key_from_jwk(member)
    spki_pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1_pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    ssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return {
        "pem-spki-newline": spki_pem,
        "pem-spki-no-newline": spki_pem.rstrip(b"\n"),
        "pem-spki-crlf": spki_pem.replace(b"\n", b"\r\n"),
        "pem-pkcs1-newline": pkcs1_pem,
        "pem-pkcs1-no-newline": pkcs1_pem.rstrip(b"\n"),
        "der-spki": key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "der-pkcs1": key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
        "jwk-json-as-served": json.dumps(member, separators=(",", ":")).encode(),
        "jwk-json-spaced": json.dumps(member).encode(),
        "jwk-json-n-e-only": json.dumps({"kty": "RSA", "n": member["n"], "e": member["e"]}).encode(),
        "jwks-document": json.dumps({"keys": [member]}).encode(),
        "ssh-rsa": ssh,
        "ssh-rsa-newline": ssh + b"\n",
        "modulus-bytes": key.public_numbers().n.to_bytes(256, "big"),
        "modulus-base64url": member["n"].encode(),
    }


def self_signed_certificate(private, common_name="attacker"):
    """A certificate for x5c / x5u injection: the attacker vouching for their own key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(private, hashes.SHA256()))


def new_ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def new_ed25519_key():
    return ed25519.Ed25519PrivateKey.generate()
