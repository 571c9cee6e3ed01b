"""Signature and key attacks (RFC 8725 sections 2.1-2.2, jwt_tool -X a/k/i/s/n, PortSwigger JWT labs)."""

import base64
import hashlib
import json
import time

import pytest

from tests.minting import RsaSigner, b64, header, hs256, rs256, unsigned
from tests.security import forge


NONE_SPELLINGS = ["none", "None", "NONE", "nOnE", "noNE", "none ", " none", "none\u0000"]


def now():
    return time.time()


def split(token):
    head, body, signature = token.split(".")
    return head, body, signature


def test_control_forged_tokens_of_the_right_shape_pass(gate, stack_signer, stack_claims, issued_token):
    # The forging tools are right: what they make with the stack's key and RS256 is accepted,
    # so every refusal below is caused by the one thing each attack changes.
    forged = forge.token(header(stack_signer), stack_claims(now()), forge.rsa_signer(stack_signer.private, "RS256"))
    for token in (issued_token, forged, rs256(stack_signer, stack_claims(now()))):
        answer, hits = gate.send(token=token)
        assert answer.status == 200 and len(hits) == 1 and hits[0][2] is not None


# --- alg none -------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", NONE_SPELLINGS)
@pytest.mark.parametrize("signature", ["empty", "original", "junk"])
def test_alg_none_with_our_kid(gate, stack_signer, stack_claims, alg, signature):
    real = split(rs256(stack_signer, stack_claims(now())))[2]
    sig = {"empty": "", "original": real, "junk": "c2lnbmF0dXJl"}[signature]
    gate.refused(token=unsigned(header(stack_signer, alg=alg), stack_claims(now(), sub="admin"), sig))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_jwt_tool_header_without_kid(gate, stack_claims, alg):
    gate.refused(token=unsigned({"alg": alg, "typ": "JWT"}, stack_claims(now(), sub="admin")))


def test_alg_none_without_trailing_dot(gate, stack_signer, stack_claims):
    forged = unsigned(header(stack_signer, alg="none"), stack_claims(now()))
    gate.refused(token=forged.rstrip("."))


# --- tampered claims and headers, original signature ---------------------------------------------


def _decode(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize("tamper", [
    {"sub": "admin"},
    {"roles": ["user", "admin"]},
    {"scope": "orders:read orders:write admin"},
    {"exp": 4_102_444_800},
    {"aud": "another-api"},
    {"iss": "https://evil.example"},
    {"admin": True},
], ids=["sub-to-admin", "roles-plus-admin", "scope-widened", "exp-extended", "aud-changed", "iss-changed",
        "claim-added"])
def test_tampered_claims_with_original_signature(gate, issued_token, tamper):
    head, body, signature = split(issued_token)
    forged = f"{head}.{b64(json.dumps(_decode(body) | tamper))}.{signature}"
    gate.refused(token=forged)


@pytest.mark.parametrize("tamper", [{"alg": "RS512"}, {"typ": "JWT"}, {"kid": "other"}, {"cty": "JWT"}],
                         ids=["alg", "typ", "kid", "cty-added"])
def test_tampered_header_with_original_signature(gate, issued_token, tamper):
    head, body, signature = split(issued_token)
    gate.refused(token=f"{b64(json.dumps(_decode(head) | tamper))}.{body}.{signature}")


def test_forged_payload_with_signature_spliced_from_another_valid_token(gate, stack_claims, issued_token):
    head, _, signature = split(issued_token)
    forged_body = b64(json.dumps(stack_claims(now(), sub="admin", roles=["admin"])))
    gate.refused(token=f"{head}.{forged_body}.{signature}")


def test_signature_stripped(gate, issued_token):
    head, body, _ = split(issued_token)
    gate.refused(token=f"{head}.{body}.")


def test_token_signed_by_an_impostor_key_under_our_kid(gate, stack_signer, stack_claims):
    impostor = RsaSigner(kid=stack_signer.kid)
    gate.refused(token=rs256(impostor, stack_claims(now(), sub="admin")))


def test_our_key_without_kid(gate, stack_signer, stack_claims):
    gate.refused(token=rs256(stack_signer, stack_claims(now()), header(stack_signer, kid=None)))


# --- RS256 -> HS256 key confusion (RFC 8725 section 2.1; CVE-2024-33663 class) ---------------------


ENCODINGS = ["pem-spki-newline", "pem-spki-no-newline", "pem-spki-crlf", "pem-pkcs1-newline",
             "pem-pkcs1-no-newline", "der-spki", "der-pkcs1", "jwk-json-as-served", "jwk-json-spaced",
             "jwk-json-n-e-only", "jwks-document", "ssh-rsa", "ssh-rsa-newline", "modulus-bytes",
             "modulus-base64url"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_key_confusion_public_key_as_hmac_secret_with_our_kid(gate, stack_jwk, stack_signer, stack_claims, encoding,
                                                             alg):
    secret = forge.public_key_encodings(stack_jwk)[encoding]
    forged = forge.token(header(stack_signer, alg=alg), stack_claims(now(), sub="admin"),
                         forge.hmac_signer(secret, alg))
    gate.refused(token=forged)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_key_confusion_public_key_as_hmac_secret_without_kid(gate, stack_claims, stack_jwk, encoding):
    secret = forge.public_key_encodings(stack_jwk)[encoding]
    gate.refused(token=hs256(secret, stack_claims(now(), sub="admin"), {"alg": "HS256", "typ": "at+jwt"}))


# --- our kid with another algorithm ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "PS384", "PS512"])
def test_our_kid_with_another_rsa_algorithm_really_signed_by_our_key(gate, stack_signer, stack_claims, alg):
    forged = forge.token(header(stack_signer, alg=alg), stack_claims(now()),
                         forge.rsa_signer(stack_signer.private, alg))
    gate.refused(token=forged)


def test_our_kid_with_es256_from_an_attacker_ec_key(gate, stack_signer, stack_claims):
    forged = forge.token(header(stack_signer, alg="ES256"), stack_claims(now()), forge.ec_signer(forge.new_ec_key()))
    gate.refused(token=forged)


def test_our_kid_with_es256_psychic_signature_zero_r_s(gate, stack_signer, stack_claims):
    # CVE-2022-21449: r = s = 0 verified as valid under a broken ECDSA implementation.
    forged = forge.token(header(stack_signer, alg="ES256"), stack_claims(now()), lambda data: bytes(64))
    gate.refused(token=forged)


def test_our_kid_with_eddsa_from_an_attacker_key(gate, stack_signer, stack_claims):
    forged = forge.token(header(stack_signer, alg="EdDSA"), stack_claims(now()),
                         forge.ed25519_signer(forge.new_ed25519_key()))
    gate.refused(token=forged)


@pytest.mark.parametrize("alg", ["rs256", "Rs256", "RS256 ", " RS256", "RS256\u0000", "RS 256", "RSA256"])
def test_our_kid_with_a_near_spelling_of_rs256_really_signed(gate, stack_signer, stack_claims, alg):
    # The signature is genuine: only the spelling of alg differs, and "the key decides" must not bend.
    gate.refused(token=rs256(stack_signer, stack_claims(now()), header(stack_signer, alg=alg)))


@pytest.mark.parametrize("alg", [None, 0, 1, True, False, 1.5, ["RS256"], {"RS256": True}, ""],
                         ids=["null", "zero", "one", "true", "false", "float", "list", "object", "empty"])
def test_alg_of_odd_json_type(gate, stack_signer, stack_claims, alg):
    head = header(stack_signer)
    head["alg"] = alg
    gate.refused(token=rs256(stack_signer, stack_claims(now()), head))


def test_alg_member_missing(gate, stack_signer, stack_claims):
    gate.refused(token=rs256(stack_signer, stack_claims(now()), header(stack_signer, alg=None)))


# --- header injection: jwk, jku, x5u, x5c (RFC 8725 section 3.10; PortSwigger labs) ----------------


def _injected(trap, attacker, member, kid, stack_claims):
    head = {"alg": "RS256", "typ": "at+jwt"}
    if kid is not None:
        head["kid"] = kid
    head[member] = {
        "jwk": attacker.jwk,
        "jku": f"{trap.url}/jwks.json",
        "x5u": f"{trap.url}/cert.pem",
        "x5c": [trap.certificate_der_b64],
    }[member]
    return rs256(attacker, stack_claims(now(), sub="admin", roles=["admin"]), head)


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
@pytest.mark.parametrize("kid_choice", ["attacker-kid", "our-kid", "no-kid"])
def test_key_header_injection_is_refused_without_outbound_fetch(gate, trap, attacker, stack_signer, stack_claims,
                                                                member, kid_choice):
    kid = {"attacker-kid": attacker.kid, "our-kid": stack_signer.kid, "no-kid": None}[kid_choice]
    gate.refused(token=_injected(trap, attacker, member, kid, stack_claims))
    assert trap.requests == []


@pytest.mark.parametrize("kid_choice", ["attacker-kid", "our-kid", "no-kid"])
def test_certificate_thumbprints_never_pick_a_key(gate, trap, attacker, stack_signer, stack_claims, kid_choice):
    # x5t and x5t#S256 are accepted as information (Entra ID sends them): our genuine token carrying
    # them passes, while the attacker's, naming the attacker's own certificate, is refused.
    der = base64.b64decode(trap.certificate_der_b64)
    thumbprints = {"x5t": b64(hashlib.sha1(der).digest()), "x5t#S256": b64(hashlib.sha256(der).digest())}
    answer, hits = gate.send(token=rs256(stack_signer, stack_claims(now()), header(stack_signer, **thumbprints)))
    assert answer.status == 200 and len(hits) == 1
    kid = {"attacker-kid": attacker.kid, "our-kid": stack_signer.kid, "no-kid": None}[kid_choice]
    gate.refused(token=rs256(attacker, stack_claims(now(), sub="admin"), header(attacker, kid=kid, **thumbprints)))
    assert trap.requests == []


def test_embedded_jwk_of_our_own_key_is_still_refused(gate, stack_signer, stack_claims, stack_jwk):
    # A genuine signature: the gateway refuses sender-chosen key material even when it is right.
    head = header(stack_signer, jwk=stack_jwk)
    gate.refused(token=rs256(stack_signer, stack_claims(now()), head))


def test_jku_pointing_at_the_gateway_own_jwks_is_refused(gate, stack_signer, stack_claims):
    head = header(stack_signer, jku=f"{gate.url}/.well-known/jwks.json")
    gate.refused(token=rs256(stack_signer, stack_claims(now()), head))


@pytest.mark.parametrize("member, value", [("crit", ["exp"]), ("b64", False), ("zip", "DEF"), ("enc", "A256GCM")])
def test_other_header_members_with_genuine_signature(gate, stack_signer, stack_claims, member, value):
    gate.refused(token=rs256(stack_signer, stack_claims(now()), header(stack_signer, **{member: value})))


def test_no_outbound_fetch_happened_during_the_whole_module(trap):
    time.sleep(0.3)
    assert trap.requests == []


# --- kid path traversal and injection (PortSwigger "kid header path traversal"; jwt_tool -I) --------


KID_ATTACKS = {
    "dev-null": "../../../../../../../dev/null",
    "dev-null-absolute": "/dev/null",
    "etc-passwd": "../../../../../../etc/passwd",
    "proc-environ": "/proc/self/environ",
    "key-file": "../keys/active.pem",
    "sql-union": "x' UNION SELECT 'attacker' -- ",
    "sql-or": "' OR '1'='1",
    "sql-stacked": "1; DROP TABLE users; --",
    "nosql": '{"$ne": null}',
    "header-crlf": "key\r\nX-User-Id: admin",
    "null-byte": "key\u0000",
    "unicode": "kéy",
    "very-long": "k" * 4000,
}


@pytest.mark.parametrize("secret", [b"", b"\x00", b"attacker"], ids=["empty-key", "null-byte-key", "sql-key"])
@pytest.mark.parametrize("name", sorted(KID_ATTACKS))
def test_kid_injection_with_hmac_forgery(gate, stack_claims, name, secret):
    head = {"alg": "HS256", "typ": "at+jwt", "kid": KID_ATTACKS[name]}
    gate.refused(token=hs256(secret, stack_claims(now(), sub="admin"), head))


@pytest.mark.parametrize("template", ["$(touch {marker})", "`touch {marker}`", "; touch {marker}",
                                      "| touch {marker}", "{{7*7}}{marker}"])
def test_kid_command_injection_runs_nothing(gate, stack_claims, attacker, tmp_path, template):
    marker = tmp_path / "pwned"
    head = header(attacker, kid=template.format(marker=marker))
    gate.refused(token=rs256(attacker, stack_claims(now()), head))
    gate.refused(token=hs256(b"", stack_claims(now()), dict(head, alg="HS256")))
    assert not marker.exists()


def test_kid_as_url_to_attacker_host_is_never_fetched(gate, stack_claims, trap, attacker):
    gate.refused(token=rs256(attacker, stack_claims(now()), header(attacker, kid=f"{trap.url}/jwks.json")))
    assert trap.requests == []


@pytest.mark.parametrize("suffix", ["/../", "/", " ", "%00", "\\", ".pem"])
def test_our_kid_with_a_suffix(gate, stack_signer, stack_claims, suffix):
    head = header(stack_signer, kid=stack_signer.kid + suffix)
    gate.refused(token=rs256(stack_signer, stack_claims(now()), head))


@pytest.mark.parametrize("kid", [7, None, ["k"], {"k": 1}, True], ids=["int", "null", "list", "object", "bool"])
def test_kid_of_odd_json_type(gate, stack_signer, stack_claims, kid):
    head = header(stack_signer)
    head["kid"] = kid
    gate.refused(token=rs256(stack_signer, stack_claims(now()), head))


# --- weak and empty HMAC secrets (jwt_tool -C dictionary) -----------------------------------------


WEAK_SECRETS = ["", "secret", "password", "123456", "changeme", "key", "admin", "jwt", "jwtgate", "jwtgate-api",
                "your-256-bit-secret", "secretkey", "s3cr3t", "demo", "s" * 40, "\x00" * 32]


@pytest.mark.parametrize("secret", WEAK_SECRETS, ids=lambda value: repr(value[:12]))
@pytest.mark.parametrize("with_kid", [True, False], ids=["our-kid", "no-kid"])
def test_weak_hmac_secret(gate, stack_signer, stack_claims, secret, with_kid):
    head = {"alg": "HS256", "typ": "at+jwt"}
    if with_kid:
        head["kid"] = stack_signer.kid
    gate.refused(token=hs256(secret.encode(), stack_claims(now(), sub="admin"), head))
