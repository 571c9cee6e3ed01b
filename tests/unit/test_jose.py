"""The strict JWS syntax of jwtgate.jose at its edges: every bound, pattern and allow-list, one step either side."""

import hashlib
import json

import pytest

from tests.minting import RsaSigner, b64, claims, header, rs256
from jwtgate import jose
from jwtgate.keys import keys_from_jwks
from jwtgate.reasons import TokenRejected

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def signer():
    return RsaSigner(kid="key-1")


@pytest.fixture(autouse=True)
def no_known_headers():
    # parse() remembers headers that passed: each test starts from a fresh parse.
    jose._KNOWN_HEADERS.clear()
    yield
    jose._KNOWN_HEADERS.clear()


def rejected(token, reason):
    with pytest.raises(TokenRejected) as raised:
        jose.parse(token)
    assert raised.value.reason == reason


def with_header(head, body=None):
    """A token with this header (a dict or raw JSON text) and a fixed signature: parse() verifies nothing."""
    text = head if isinstance(head, str) else json.dumps(head, separators=(",", ":"))
    return f"{b64(text)}.{b64(json.dumps(body or {'sub': 'alice'}))}.{b64(b'signature')}"


def test_a_valid_token_parses_into_header_claims_and_signature(signer):
    token = rs256(signer, claims(NOW))
    head, body, signature = jose.parse(token)
    assert head == header(signer) and body["sub"] == "alice" and len(signature) == 256


@pytest.mark.parametrize("suffix", ["==AAAA", "=", "AA=A", "+A", "/A", "A A", ".A"])
def test_padding_or_other_characters_after_a_valid_signature_are_malformed(signer, suffix):
    rejected(rs256(signer, claims(NOW)) + suffix, "malformed")


@pytest.mark.parametrize("segment", ["", "=", "AA==", "A+", "A/", "A.", "é", "AA A", "AA.A", "AA\tA", "AAA\n"])
def test_an_empty_segment_or_one_outside_the_base64url_alphabet_is_malformed(segment):
    with pytest.raises(TokenRejected) as raised:
        jose.b64decode(segment)
    assert raised.value.reason == "malformed"


@pytest.mark.parametrize("size", [1024, 1025])
def test_a_header_of_1024_bytes_parses_and_one_of_1025_is_malformed(size):
    head = '{"alg":"RS256","typ":"' + "t" * (size - 24) + '"}'
    assert len(head) == size
    if size == 1024:
        assert jose.parse(with_header(head))[0]["alg"] == "RS256"
    else:
        rejected(with_header(head), "malformed")


def nested(depth):
    return b"[" * depth + b"]" * depth


def test_json_nesting_of_ten_levels_parses_and_eleven_is_malformed():
    assert not jose.exceeds_depth(nested(jose.MAX_JSON_DEPTH))
    assert jose.exceeds_depth(nested(jose.MAX_JSON_DEPTH + 1))
    assert jose.MAX_JSON_DEPTH == 10
    assert jose.json_object(b'{"a":' + nested(9) + b"}") == {"a": [[[[[[[[[]]]]]]]]]}
    with pytest.raises(TokenRejected) as raised:
        jose.json_object(b'{"a":' + nested(10) + b"}")
    assert raised.value.reason == "malformed"


def test_many_shallow_brackets_are_not_deep():
    assert not jose.exceeds_depth(b"[" + b"[]," * 20 + b"[]]")
    assert not jose.exceeds_depth(b'{"a":[[],[],[],[],[],[],[],[],[],[],[],[]]}')
    assert not jose.exceeds_depth(b"[" + b"{}," * 12 + b"{}]")
    assert jose.json_object(b'{"a":[' + b'{"b":{}},' * 6 + b"{}]}")["a"][0] == {"b": {}}


def test_an_empty_first_string_does_not_hide_the_nesting_after_it():
    assert jose.exceeds_depth(b'{"":' + nested(11) + b"}")
    assert jose.exceeds_depth(b'{"":"",' + b'"a":' + nested(11) + b"}")


def test_closing_brackets_lower_the_depth_only_by_one_each():
    # Ten deep, one closed, two opened: eleven deep (a closing bracket that reset the count would say three).
    assert jose.exceeds_depth(b"[" * 10 + b"],[[]]" + b"]" * 9)
    assert not jose.exceeds_depth(b"[" * 10 + b"],[]" + b"]" * 9)
    # Two levels closed, then eleven more opened inside the remaining one: 12 deep.
    assert jose.exceeds_depth(b"[[[]," + nested(11) + b"]]")
    assert jose.exceeds_depth(b'{"a":{"b":[]},' + b'"c":' + nested(10) + b"}")


def test_brackets_inside_strings_and_escaped_quotes_do_not_count():
    assert not jose.exceeds_depth(b'["' + b"[" * 20 + b'"]')
    assert not jose.exceeds_depth(b'["\\"' + b"[" * 20 + b'"]')
    assert jose.exceeds_depth(b'["\\\\",' + nested(10) + b"]")
    assert jose.exceeds_depth(b'["a\\"b",' + nested(10) + b"]")


def test_json_that_is_not_one_strict_object_is_malformed():
    for text in (b"[]", b'"a"', b'{"a":1,"a":2}', b'{"a":NaN}', b'{"a":Infinity}', b"\xff", b"{"):
        with pytest.raises(TokenRejected) as raised:
            jose.json_object(text)
        assert raised.value.reason == "malformed"


@pytest.mark.parametrize("length, passes", [(1, True), (128, True), (129, False)])
def test_a_kid_is_one_to_128_visible_characters(length, passes):
    token = with_header({"alg": "RS256", "kid": "k" * length})
    if passes:
        assert jose.parse(token)[0]["kid"] == "k" * length
    else:
        rejected(token, "unsupported_header")


@pytest.mark.parametrize("kid", ["a b", "a\x7f", "a\x1f", "é", "a\n"])
def test_a_kid_with_a_space_control_or_non_ascii_character_is_refused(kid):
    rejected(with_header({"alg": "RS256", "kid": kid}), "unsupported_header")


def test_a_kid_of_every_visible_character_is_accepted():
    kid = "".join(chr(code) for code in range(0x21, 0x7f))
    assert jose.parse(with_header({"alg": "RS256", "kid": kid[:64]}))[0]["kid"] == kid[:64]
    assert jose.parse(with_header({"alg": "RS256", "kid": kid[64:]}))[0]["kid"] == kid[64:]


@pytest.mark.parametrize("member, length", [("x5t", 27), ("x5t#S256", 43)])
def test_a_thumbprint_is_exactly_one_digest_long(member, length):
    assert jose.parse(with_header({"alg": "RS256", member: "A" * length}))[0][member] == "A" * length
    for wrong in ("A" * (length - 1), "A" * (length + 1), "=" + "A" * (length - 1), "+" * length):
        rejected(with_header({"alg": "RS256", member: wrong}), "unsupported_header")


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c", "crit", "b64", "enc", "zip", "cty", "x5t#S1"])
def test_header_members_outside_the_allow_list_are_refused(member):
    rejected(with_header({"alg": "RS256", member: "x"}), "unsupported_header")


def test_every_allowed_header_member_together_parses():
    head = {"alg": "RS256", "typ": "at+jwt", "kid": "k", "x5t": "A" * 27, "x5t#S256": "A" * 43}
    assert jose.parse(with_header(head))[0] == head


@pytest.mark.parametrize("alg", ["", None, 1, ["RS256"]])
def test_an_empty_or_non_string_alg_is_refused(alg):
    rejected(with_header({"alg": alg}), "unsupported_algorithm")
    rejected(with_header({"typ": "at+jwt"}), "unsupported_algorithm")


def test_known_headers_stay_bounded_at_64():
    for number in range(64):
        jose.parse(with_header({"alg": "RS256", "kid": f"k{number}"}))
    assert len(jose._KNOWN_HEADERS) == 64
    jose.parse(with_header({"alg": "RS256", "kid": "k64"}))
    assert len(jose._KNOWN_HEADERS) == 1


class _Raising:
    def verify(self, message, signature):
        raise ValueError("backend trouble")


class _Truthy:
    def verify(self, message, signature):
        return 1


def test_a_key_whose_verify_raises_or_answers_other_than_true_does_not_verify():
    assert jose.signature_verifies("a.b.c", b"sig", _Raising()) is False
    assert jose.signature_verifies("a.b.c", b"sig", _Truthy()) is False


def test_the_signature_covers_exactly_the_header_and_claims_segments(signer):
    key = keys_from_jwks(signer.jwks())[0][signer.kid]
    token = rs256(signer, claims(NOW))
    head, _body, signature = jose.parse(token)
    assert jose.signature_verifies(token, signature, key.key) is True
    head_segment, body_segment, signature_segment = token.split(".")
    assert jose.signature_verifies(f"{head_segment}.{body_segment}x.{signature_segment}", signature, key.key) is False
    jose.verify_signature(token, head, signature, key)


def test_the_token_digest_is_the_sha256_of_the_whole_token():
    assert jose.token_digest("a.b.c") == int.from_bytes(hashlib.sha256(b"a.b.c").digest(), "big")
