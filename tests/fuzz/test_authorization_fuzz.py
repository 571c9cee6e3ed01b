"""Arbitrary Authorization values against the in-process validator: never a crash, never a 200."""

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.minting import b64, claims, rs256
from jwtgate.reasons import REASONS


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

headers = st.fixed_dictionaries({}, optional={
    "alg": st.sampled_from(["RS256", "none", "HS256", "RS512", "ES256", "rs256", ""]) | json_values,
    "typ": st.sampled_from(["at+jwt", "JWT", "application/at+jwt"]) | json_values,
    "kid": st.sampled_from(["fuzz-key", "other", "../../dev/null"]) | json_values,
    "jwk": json_values, "jku": st.text(max_size=20), "crit": json_values,
}) | st.dictionaries(st.text(max_size=8), json_values, max_size=5)

claim_sets = st.dictionaries(
    st.sampled_from(["exp", "iat", "nbf", "sub", "iss", "aud", "jti", "roles", "scope"]) | st.text(max_size=6),
    json_values, max_size=10,
)


def segment(data):
    return b64(data)


forged_tokens = st.builds(
    lambda head, body, signature: f"{segment(json.dumps(head))}.{segment(json.dumps(body))}.{segment(signature)}",
    headers, claim_sets, st.binary(max_size=300),
)

raw_segments = st.lists(st.text(alphabet=B64URL + "=+/ .", max_size=80), min_size=1, max_size=6).map(".".join)

schemes = st.sampled_from(["Bearer ", "bearer ", "BEARER ", "Bearer  ", "Basic ", "", "Bearer\t", " Bearer "])

latin1 = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=300)


@st.composite
def edited_valid_tokens(draw, validator):
    """(genuine token, the same with a few random insertions, deletions or replacements)."""
    genuine = rs256(validator.signer, claims(validator.clock()))
    token = list(genuine)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(token) - 1))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        character = draw(st.sampled_from(B64URL + ".=+/ \t\x00\xff"))
        if action == "replace":
            token[position] = character
        elif action == "insert":
            token.insert(position, character)
        else:
            del token[position]
    return genuine, "".join(token)


def assert_clean_denial(result, value, validator):
    assert result.status_code == 401, (value, result.status_code)
    reason = result.headers.get("X-Auth-Error")
    assert reason in REASONS, reason
    # internal_error means an exception escaped the parser: garbage must have a precise reason.
    assert reason != "internal_error", value
    assert result.headers["WWW-Authenticate"].startswith(f'Bearer realm="{validator.settings.realm}"')
    assert not [name for name in result.headers if name.lower().startswith("x-user")]


@given(value=latin1)
def test_any_latin1_authorization_value(validator, value):
    assert_clean_denial(validator.verify(value), value, validator)


@given(value=st.tuples(schemes, raw_segments).map("".join))
def test_any_segments_after_a_scheme(validator, value):
    assert_clean_denial(validator.verify(value), value, validator)


@given(scheme=schemes, token=forged_tokens)
def test_any_json_header_and_claims_with_a_forged_signature(validator, scheme, token):
    value = scheme + token
    assert_clean_denial(validator.verify(value), value, validator)


@given(data=st.data())
def test_randomly_edited_genuine_token(validator, data):
    genuine, token = data.draw(edited_valid_tokens(validator))
    result = validator.verify("Bearer " + token)
    if token == genuine:
        # The edits cancelled out: one token has one spelling, and this is it.
        assert result.status_code == 200
    elif token.strip(" \t") != genuine:
        # Whitespace around the token belongs to the header syntax (RFC 7235 section 2.1), not the token.
        assert_clean_denial(result, token, validator)


@given(head=headers, body=claim_sets)
def test_any_header_and_claims_signed_with_the_right_key(validator, head, body):
    """A genuine signature over a random header and claims: 200 only for a well-formed access token."""
    value = "Bearer " + rs256(validator.signer, body, head)
    result = validator.verify(value)
    if result.status_code == 200:
        assert head.get("alg") == "RS256" and head.get("kid") == validator.signer.kid
        assert set(head) <= {"alg", "typ", "kid"}
        return
    assert_clean_denial(result, value, validator)
