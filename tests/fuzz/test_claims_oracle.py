"""Random claim sets signed with the right key: 200 exactly when an independent oracle of the documented rules says so.

The oracle is written from docs/security.md ("What the validator checks"), not from jwtgate/claims.py.
Limits the docs do not state (claim count, name and `sub` lengths, the NumericDate range)
are kept out of reach of the generators instead of being guessed.
"""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import JWKS_URL, Validator
from tests.minting import AUDIENCE, ISSUER, rs256
from validator.config import Settings


NOW = 1_800_000_000  # FakeClock's default
MISSING = object()
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/@-"
VISIBLE = "".join(chr(code) for code in range(0x21, 0x7F))
_NAME = re.compile(r"[A-Za-z0-9._:/@-]+")


def kept(names):
    """The names a header can carry: the others are left out (docs/security.md)."""
    return ",".join(name for name in names if _NAME.fullmatch(name))


def oracle(claim_set, leeway):
    """Does this claim set satisfy every rule of docs/security.md?"""
    required = ("exp", "iat", "sub", "iss", "aud", "jti")
    if any(name not in claim_set for name in required):
        return False
    dates = {name: claim_set[name] for name in ("exp", "iat", "nbf") if name in claim_set}
    if any(type(value) is not int for value in dates.values()):  # bool is not a date
        return False
    sub = claim_set["sub"]
    if not (isinstance(sub, str) and sub and all(0x21 <= ord(char) <= 0x7E for char in sub)):
        return False
    if not (isinstance(claim_set["iss"], str) and claim_set["iss"] == ISSUER):
        return False
    if not (isinstance(claim_set["aud"], str) and claim_set["aud"] == AUDIENCE):
        return False
    roles = claim_set.get("roles", [])
    if not (isinstance(roles, list) and all(isinstance(role, str) for role in roles)):
        return False
    if not isinstance(claim_set.get("scope", ""), str):
        return False
    if not NOW < dates["exp"] + leeway:
        return False
    if dates["iat"] > NOW + leeway or dates.get("nbf", NOW) > NOW + leeway:
        return False
    # Not in the README yet, enforced by validator/tokens.py: a token must expire after it is issued.
    return dates["exp"] > dates["iat"]


names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=16)
bad_names = st.text(max_size=10).filter(lambda text: not _NAME.fullmatch(text))
odd_json = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=8), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def around(point, spread):
    return st.integers(point - spread, point + spread)


# Ordinary values most of the time; the leeway boundaries (exp + leeway, now + leeway) and the
# whole range now and then.
_past, _future = st.integers(NOW - 10**7, NOW - 31), st.integers(NOW + 31, NOW + 10**7)
dates = {
    "exp": st.one_of(_future, _future, _future, around(NOW - 30, 5), around(NOW, 5), st.integers(0, 2**35)),
    "iat": st.one_of(_past, _past, _past, around(NOW + 30, 5), around(NOW, 5), st.integers(0, 2**35)),
    "nbf": st.one_of(_past, _past, around(NOW + 30, 5), around(NOW, 5), st.integers(0, 2**35)),
}
odd_dates = st.one_of(odd_json, st.integers(NOW - 100, NOW + 100).map(str), st.just(float(NOW)))

VALID = {
    **dates,
    "sub": st.text(alphabet=VISIBLE, min_size=1, max_size=40),
    "iss": st.just(ISSUER),
    "aud": st.just(AUDIENCE),
    "jti": st.text(alphabet=VISIBLE, min_size=1, max_size=40),
    "roles": st.lists(names, max_size=5),
    "scope": st.lists(names, max_size=5).map(" ".join),
}
INVALID = {
    "exp": odd_dates, "iat": odd_dates, "nbf": odd_dates,
    "sub": st.one_of(st.text(max_size=12).filter(lambda text: not (text and set(text) <= set(VISIBLE))),
                     st.integers(), st.lists(st.text(max_size=3), max_size=2), st.none()),
    "iss": st.one_of(st.sampled_from(["JWTGATE", "jwtgate ", "", "https://evil.example"]), st.just([ISSUER]),
                     odd_json),
    "aud": st.one_of(st.sampled_from(["JWTGATE-API", "", "another-api"]), st.just([AUDIENCE]),
                     st.just([AUDIENCE, "another-api"]), odd_json),
    "jti": st.nothing(),
    "roles": st.one_of(st.lists(st.one_of(bad_names, st.integers(), st.none()), min_size=1, max_size=3).map(
        lambda bad: ["user", *bad]), names, st.integers(), st.none()),
    "scope": st.one_of(st.lists(names, min_size=2, max_size=3).map("  ".join),
                       st.lists(names, min_size=2, max_size=3).map(",".join), names.map(lambda name: " " + name),
                       names.map(lambda name: name + " "), st.lists(names, max_size=2), st.integers(), st.none()),
}
OPTIONAL = ("nbf", "roles", "scope")


@st.composite
def claim_sets(draw):
    """Mostly valid claims, each one missing or odd about one time in sixteen."""
    claim_set = {}
    for name in ("exp", "iat", "nbf", "sub", "iss", "aud", "jti", "roles", "scope"):
        # Mid-range fates: Hypothesis favours small integers, which would make "missing" common.
        fate = draw(st.integers(0, 31))
        if fate == 13 or (name in OPTIONAL and 20 <= fate < 30):
            continue
        if fate == 17 and name != "jti":
            claim_set[name] = draw(INVALID[name])
        else:
            claim_set[name] = draw(VALID[name])
    extra = draw(st.dictionaries(st.text(alphabet="xyz_", min_size=1, max_size=6), odd_json, max_size=3))
    return {**extra, **claim_set}


@pytest.fixture(scope="module", params=[30, 0], ids=["leeway-30", "leeway-0"])
def judged(request):
    return Validator(Settings(jwks_url=JWKS_URL, provider_preset="jwtgate",
                              leeway_seconds=request.param)), request.param


@given(claim_set=claim_sets())
def test_signed_claims_pass_exactly_when_every_rule_holds(judged, claim_set):
    validator, leeway = judged
    result = validator.verify("Bearer " + rs256(validator.signer, claim_set))
    expected = oracle(claim_set, leeway)
    assert result.status_code == (200 if expected else 401), (claim_set, result.headers.get("X-Auth-Error"))
    if expected:
        assert result.headers["X-User-Id"] == claim_set["sub"]
        assert result.headers["X-User-Roles"] == kept(claim_set.get("roles", []))
        assert result.headers["X-User-Scopes"] == kept(claim_set.get("scope", "").split(" "))
    else:
        assert result.headers["X-Auth-Error"] not in ("internal_error", "invalid_signature", "malformed")
