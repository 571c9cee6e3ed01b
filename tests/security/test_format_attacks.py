"""Encoding and parsing attacks: one token, one spelling; hostile JSON; broken compact syntax."""

import json
import time

import pytest

from tests.minting import b64, header, rs256
from tests.security.gate import PROTECTED


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def now():
    return time.time()


@pytest.fixture
def valid(gate, stack_signer, stack_claims):
    """A fresh valid token whose signature holds both '-' and '_', proven to pass (and now cached)."""
    while True:
        token = rs256(stack_signer, stack_claims(now()))
        if "-" in token.split(".")[2] and "_" in token.split(".")[2]:
            break
    answer, hits = gate.send(token=token)
    assert answer.status == 200 and hits and hits[-1][2] == "alice"
    return token


def _flip_unused_bits(segment):
    """The same bytes, spelled with a different last character (RFC 4648 section 3.5)."""
    unused = {2: 4, 3: 2}[len(segment) % 4]
    last = ALPHABET.index(segment[-1])
    return segment[:-1] + ALPHABET[last ^ ((1 << unused) - 1)]


SPELLINGS = {
    "padding-on-signature": lambda t: t + "=" * (-len(t.split(".")[2]) % 4 or 4),
    "padding-on-header": lambda t: t.replace(".", "=" * (-len(t.split(".")[0]) % 4 or 4) + ".", 1),
    "padding-on-payload": lambda t: ".".join([t.split(".")[0], t.split(".")[1] + "==", t.split(".")[2]]),
    "standard-alphabet-plus-slash": lambda t: t.replace("-", "+").replace("_", "/"),
    "space-inside": lambda t: t[:20] + " " + t[20:],
    "tab-inside": lambda t: t[:20] + "\t" + t[20:],
    "space-after-dot": lambda t: t.replace(".", ". ", 1),
    "percent-encoded-dot": lambda t: t.replace(".", "%2E", 1),
    "trailing-dot": lambda t: t + ".",
    "leading-dot": lambda t: "." + t,
    "double-dot": lambda t: t.replace(".", "..", 1),
    "trailing-equals-after-token": lambda t: t + "==",
    "non-canonical-last-char-of-signature": lambda t: t[:t.rindex(".") + 1] + _flip_unused_bits(t.split(".")[2]),
    "lowercased": lambda t: t.lower(),
    "quoted": lambda t: f'"{t}"',
    "backslash-inside": lambda t: t[:30] + "\\" + t[30:],
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_alternative_base64_spelling_of_a_valid_token(gate, valid, spelling):
    spelled = SPELLINGS[spelling](valid)
    assert spelled != valid
    gate.refused(token=spelled)


@pytest.mark.parametrize("segment", [0, 1])
def test_non_canonical_last_char_of_header_or_payload(gate, stack_signer, stack_claims, segment):
    # Keep minting until the segment has unused bits, then sign the odd spelling itself:
    # the signature is valid over what was sent, but the spelling is not canonical.
    while True:
        parts = rs256(stack_signer, stack_claims(now())).split(".")
        if len(parts[segment]) % 4:
            break
    parts[segment] = _flip_unused_bits(parts[segment])
    signing_input = f"{parts[0]}.{parts[1]}"
    gate.refused(token=f"{signing_input}.{stack_signer.sign_input(signing_input)}")


@pytest.mark.parametrize("value", [b"Bearer eyJh\r\n bGc.x.y", b"Bearer " + b"\xef\xbc\x8e".join([b"a", b"b", b"c"])],
                         ids=["obs-fold-inside-token", "fullwidth-dots"])
def test_alternative_spelling_through_raw_bytes(gate, value):
    answers, hits = gate.send_raw(b"GET /api/protected/ HTTP/1.1\r\nHost: x\r\nAuthorization: " + value
                                  + b"\r\nConnection: close\r\n\r\n")
    assert answers and 400 <= answers[0].status < 500 and hits == []
    if answers[0].status == 401:
        gate.assert_refused(answers[0], hits)


@pytest.mark.parametrize("token", [
    "a", "a.b", "a.b.c.d", "eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn", "..", "...", "....",
    "e30.e30.", "e30.e30.e30", "bnVsbA.bnVsbA.c2ln", "W10.W10.c2ln",
], ids=["one-char", "two-parts", "four-parts", "jwe-five-parts", "only-dots", "three-dots",
        "four-dots", "empty-objects-no-sig", "empty-objects", "null-json", "array-json"])
def test_broken_compact_syntax(gate, token):
    gate.refused(token=token)


@pytest.mark.parametrize("value", [
    "Bearer", "Basic YWRtaW46YWRtaW4=", "Token a.b.c", "Digest username=admin", "Bearer a.b.c extra",
    "Bearer a.b.c, Bearer d.e.f", "BearerX a.b.c", "Bearer\ta.b.c", "JWT a.b.c", "Negotiate YII=",
], ids=["bearer-no-token", "basic", "token-scheme", "digest", "two-words", "two-credentials-one-header",
        "scheme-glued", "tab-separator", "jwt-scheme", "negotiate"])
def test_authorization_value_that_is_not_one_bearer_token(gate, value):
    gate.refused(headers=[("Authorization", value)])


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT"])
def test_valid_token_under_another_scheme(gate, mint, scheme):
    gate.refused(headers=[("Authorization", f"{scheme} {mint()}")])


def _signed(stack_signer, head, body):
    """Sign raw JSON text exactly as given, so the signature is genuine."""
    signing_input = f"{b64(head)}.{b64(body)}"
    return f"{signing_input}.{stack_signer.sign_input(signing_input)}"


def _claims_text(stack_claims, **overrides):
    return json.dumps(stack_claims(now(), **overrides))


@pytest.mark.parametrize("depth", [1200, 2500])
def test_deeply_nested_claim_with_genuine_signature(gate, stack_signer, stack_claims, depth):
    body = _claims_text(stack_claims)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    gate.refused(token=_signed(stack_signer, json.dumps(header(stack_signer)), body))


@pytest.mark.parametrize("depth", [100, 1200])
def test_deeply_nested_header_with_genuine_signature(gate, stack_signer, stack_claims, depth):
    head = json.dumps(header(stack_signer))[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    gate.refused(token=_signed(stack_signer, head, _claims_text(stack_claims)))


def test_deeply_nested_payload_with_forged_signature(gate):
    body = "[" * 1300 + "]" * 1300
    gate.refused(token=f"{b64(json.dumps({'alg': 'RS256', 'typ': 'at+jwt'}))}.{b64(body)}.c2ln")


def test_a_large_genuine_token_within_the_validators_limit_passes(gate, stack_signer, stack_claims):
    # Providers' tokens grow with groups and permissions: 7 KB of them is no attack.
    token = rs256(stack_signer, stack_claims(now(), padding="x" * 5000))
    assert 7000 < len(token) <= 8000
    answer, hits = gate.send(token=token)
    assert answer.status == 200 and hits[-1][2] == "alice"


def test_huge_token_under_the_nginx_header_limit(gate, stack_signer, stack_claims):
    # Over the validator's 8000 bytes, still inside Nginx's 8 KiB header line: the validator refuses it.
    token = next(token for size in range(5000, 6500)
                 if 8000 < len(token := rs256(stack_signer, stack_claims(now(), padding="x" * size))) < 8100)
    answer = gate.refused(token=token)
    assert answer.json()["error"] == "invalid_request"


def test_huge_token_over_the_nginx_header_limit(gate, stack_signer, stack_claims):
    token = rs256(stack_signer, stack_claims(now(), padding="x" * 9000))
    answer, hits = gate.send(token=token)
    gate.blocked(answer, hits, {400, 431})


def test_too_many_claims_with_genuine_signature(gate, stack_signer, stack_claims):
    extra = {f"c{number}": number for number in range(100)}
    gate.refused(token=rs256(stack_signer, stack_claims(now()) | extra))


def test_huge_header_with_genuine_signature(gate, stack_signer, stack_claims):
    gate.refused(token=rs256(stack_signer, stack_claims(now()), header(stack_signer) | {"typ": "at+jwt" + " " * 1200}))


@pytest.mark.parametrize("exp", ["1e400", "9" * 400, "-0", "1.0e10", "NaN", "Infinity"])
def test_hostile_number_literals_in_exp(gate, stack_signer, stack_claims, exp):
    body = _claims_text(stack_claims)
    body = body.replace(f'"exp": {json.loads(body)["exp"]}', f'"exp": {exp}')
    assert exp in body
    gate.refused(token=_signed(stack_signer, json.dumps(header(stack_signer)), body))


@pytest.mark.parametrize("where, text", [
    ("payload", ', "sub": "admin"'),
    ("payload", ', "exp": 4102444800'),
    ("payload", ', "aud": "jwtgate-api"'),
    ("payload", ', "roles": ["admin"]'),
    ("header", ', "alg": "none"'),
    ("header", ', "kid": "other"'),
    ("header", ', "typ": "at+jwt"'),
], ids=["sub", "exp", "aud", "roles", "alg", "kid", "typ"])
def test_duplicate_json_member_with_genuine_signature(gate, stack_signer, stack_claims, where, text):
    head, body = json.dumps(header(stack_signer)), _claims_text(stack_claims)
    if where == "payload":
        body = body[:-1] + text + "}"
    else:
        head = head[:-1] + text + "}"
    gate.refused(token=_signed(stack_signer, head, body))


def test_duplicate_member_spelled_with_unicode_escape(gate, stack_signer, stack_claims):
    body = _claims_text(stack_claims)[:-1] + ', "\\u0073ub": "admin"}'
    gate.refused(token=_signed(stack_signer, json.dumps(header(stack_signer)), body))


@pytest.mark.parametrize("shape", ["bom", "two-objects", "single-quotes", "trailing-comma"])
def test_payload_that_is_not_one_strict_json_object(gate, stack_signer, stack_claims, shape):
    valid = _claims_text(stack_claims)
    body = {"bom": "\ufeff" + valid, "two-objects": valid + '{"sub": "admin"}',
            "single-quotes": valid.replace('"', "'"), "trailing-comma": valid[:-1] + ",}"}[shape]
    gate.refused(token=_signed(stack_signer, json.dumps(header(stack_signer)), body))


def test_invalid_utf8_in_payload(gate, stack_signer, stack_claims):
    body = _claims_text(stack_claims).encode()[:-1] + b', "x": "\xff\xfe"}'
    signing_input = f"{b64(json.dumps(header(stack_signer)))}.{b64(body)}"
    gate.refused(token=f"{signing_input}.{stack_signer.sign_input(signing_input)}")


def test_token_only_in_query_string(gate, mint):
    gate.refused(path=f"{PROTECTED}?access_token={mint()}")


def test_token_only_in_cookie(gate, mint):
    gate.refused(headers=[("Cookie", f"access_token={mint()}; token={mint()}")])


@pytest.mark.parametrize("name", ["X-Access-Token", "Proxy-Authorization", "X-Authorization", "Authorisation"])
def test_token_in_another_header(gate, mint, name):
    gate.refused(headers=[(name, f"Bearer {mint()}")])
