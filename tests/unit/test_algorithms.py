"""Every JWS algorithm we accept, from a fresh key's JWK to verify_signature, and every way to get it wrong."""

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.minting import b64, claims, raw_json
from tests.security import forge
from jwtgate.keys import key_from_jwk, keys_from_jwks
from jwtgate.jose import parse, verify_signature
from jwtgate.reasons import TokenRejected

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48),
           "ES512": (ec.SECP521R1, "P-521", 66)}
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _uint(value, size=None):
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


class Signer:
    """A fresh key for one algorithm: its public JWK and a sign(bytes) in JWS form."""

    def __init__(self, alg, kid="k1"):
        self.alg, self.kid = alg, kid
        if alg[:2] in ("RS", "PS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "kid": kid, "alg": alg, "n": _uint(numbers.n), "e": _uint(numbers.e)}
            self.sign = forge.rsa_signer(self.private, alg)
        elif alg.startswith("ES"):
            curve, crv, size = _CURVES[alg]
            self.private = ec.generate_private_key(curve())
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "EC", "kid": kid, "crv": crv, "x": _uint(numbers.x, size), "y": _uint(numbers.y, size)}
            self.digest = _HASHES[alg[2:]]
            self.size = size
            self.sign = self._ecdsa
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            x = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(x)}
            self.sign = self.private.sign

    def der(self, data):
        return self.private.sign(data, ec.ECDSA(self.digest()))

    def _ecdsa(self, data):
        # RFC 7518 section 3.4: r and s as fixed-length big-endian octets, concatenated.
        r, s = decode_dss_signature(self.der(data))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")

    def token(self, alg=None, sign=None, **head):
        return forge.token({"alg": alg or self.alg, "typ": "at+jwt", "kid": self.kid, **head},
                           claims(1_800_000_000), sign or self.sign)


def check(token, key):
    header, _, signature = parse(token)
    verify_signature(token, header, signature, key)


def refused(token, key, reason):
    with pytest.raises(TokenRejected) as raised:
        check(token, key)
    assert raised.value.reason == reason


@pytest.fixture(scope="module", params=ALGORITHMS)
def signer(request):
    return Signer(request.param)


def test_a_token_signed_with_a_fresh_key_verifies(signer):
    key = key_from_jwk(signer.jwk)
    assert key.alg == signer.alg
    check(signer.token(), key)


def test_a_key_without_alg_is_bound_to_the_algorithm_its_curve_or_default_names(signer):
    member = {name: value for name, value in signer.jwk.items() if name != "alg"}
    expected = "RS256" if signer.alg.startswith(("RS", "PS")) else signer.alg
    assert key_from_jwk(member).alg == expected
    if signer.alg.startswith(("RS", "PS")):
        key = key_from_jwk(member, default_alg=signer.alg)
        assert key.alg == signer.alg
        check(signer.token(), key)


def test_a_flipped_bit_anywhere_fails(signer):
    key = key_from_jwk(signer.jwk)
    token = signer.token()
    head, body, signature = token.split(".")
    raw = bytearray(signer.sign(f"{head}.{body}".encode()))
    raw[len(raw) // 2] ^= 0x01
    refused(f"{head}.{body}.{b64(bytes(raw))}", key, "invalid_signature")
    tampered = b64(raw_json(claims(1_800_000_000, sub="mallory")))
    refused(f"{head}.{tampered}.{signature}", key, "invalid_signature")


def test_a_signature_of_another_key_fails(signer):
    other = Signer(signer.alg)
    refused(signer.token(sign=other.sign), key_from_jwk(signer.jwk), "invalid_signature")


@pytest.mark.parametrize("change", ["truncated", "extended", "leading-zero"])
def test_a_signature_of_the_wrong_length_fails(signer, change):
    head, body, _ = signer.token().split(".")
    raw = signer.sign(f"{head}.{body}".encode())
    wrong = {"truncated": raw[:-1], "extended": raw + b"\x00", "leading-zero": b"\x00" + raw}[change]
    refused(f"{head}.{body}.{b64(wrong)}", key_from_jwk(signer.jwk), "invalid_signature")


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_an_ecdsa_signature_in_der_form_fails(alg):
    signer = Signer(alg)
    refused(signer.token(sign=signer.der), key_from_jwk(signer.jwk), "invalid_signature")


@pytest.mark.parametrize("key_alg, token_alg", [
    ("RS256", "ES256"), ("RS256", "PS256"), ("PS256", "RS256"), ("PS256", "PS384"), ("RS256", "EdDSA"),
    ("ES256", "ES384"), ("ES256", "EdDSA"), ("EdDSA", "ES256"), ("EdDSA", "RS256"),
])
def test_a_header_alg_other_than_the_key_alg_is_refused(key_alg, token_alg):
    # Signed for real with the header's algorithm, by a key of the right type, under our kid.
    ours, theirs = Signer(key_alg), Signer(token_alg)
    refused(theirs.token(alg=token_alg), key_from_jwk(ours.jwk), "unsupported_algorithm")


def test_an_rs256_key_refuses_a_pss_signature_by_its_own_private_key():
    signer = Signer("RS256")
    pss = forge.rsa_signer(signer.private, "PS256")
    refused(signer.token(alg="PS256", sign=pss), key_from_jwk(signer.jwk), "unsupported_algorithm")
    refused(signer.token(sign=pss), key_from_jwk(signer.jwk), "invalid_signature")


def test_a_pss_signature_with_another_salt_length_fails():
    signer = Signer("PS256")
    zero_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=0)
    token = signer.token(sign=lambda data: signer.private.sign(data, zero_salt, hashes.SHA256()))
    refused(token, key_from_jwk(signer.jwk), "invalid_signature")


def test_eddsa_signed_by_an_ed448_key_is_refused_and_ed448_keys_are_skipped():
    ours = Signer("EdDSA")
    ed448_key = ed448.Ed448PrivateKey.generate()
    refused(ours.token(sign=ed448_key.sign), key_from_jwk(ours.jwk), "invalid_signature")
    x = ed448_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    keys, problems = keys_from_jwks({"keys": [{"kty": "OKP", "kid": "ed448", "crv": "Ed448", "x": b64(x)},
                                              {"kty": "OKP", "kid": "ed448-alg", "crv": "Ed448", "alg": "EdDSA",
                                               "x": b64(x)}, ours.jwk]})
    assert list(keys) == [ours.kid] and len(problems) == 2


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_hs256_keyed_with_the_public_key_is_refused(alg):
    signer = Signer(alg)
    public = signer.private.public_key()
    encodings = [public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
                 public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
                 raw_json(signer.jwk).encode()]
    for secret in encodings:
        token = signer.token(alg="HS256", sign=lambda data: hmac.new(secret, data, hashlib.sha256).digest())
        refused(token, key_from_jwk(signer.jwk), "unsupported_algorithm")


def test_keys_that_must_not_be_used_are_skipped_without_failing_the_set():
    good = [Signer(alg, kid=alg) for alg in ("PS256", "ES384", "EdDSA")]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    members = [
        {"kty": "RSA", "kid": "weak", "alg": "PS256", "n": _uint(weak.n), "e": _uint(weak.e)},
        dict(good[0].jwk, kid="enc", use="enc"),
        dict(good[0].jwk, kid="odd-alg", alg="PS1"),
        dict(good[1].jwk, kid="wrong-curve-alg", alg="ES256"),
        dict(good[2].jwk, kid="okp-wrong-alg", alg="ES256"),
        dict(good[2].jwk, kid="x25519", crv="X25519"),
        dict(good[2].jwk, kid="short-x", x=good[2].jwk["x"][:-2]),
        {"kty": "oct-ish", "kid": "unknown-kty"},
        *(signer.jwk for signer in good),
    ]
    keys, problems = keys_from_jwks({"keys": members})
    assert sorted(keys) == ["ES384", "EdDSA", "PS256"]
    assert len(problems) == 8


def test_x5c_and_thumbprint_members_in_a_jwks_member_are_tolerated_and_unused():
    signer, impostor = Signer("PS256"), forge.new_ec_key()
    certificate = forge.self_signed_certificate(impostor)
    der = certificate.public_bytes(Encoding.DER)
    member = dict(signer.jwk, x5c=[base64.b64encode(der).decode()], x5t=b64(hashlib.sha1(der).digest()),
                  **{"x5t#S256": b64(hashlib.sha256(der).digest())})
    key = key_from_jwk(member)
    check(signer.token(), key)
