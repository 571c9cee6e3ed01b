"""The Verifier: the token's iss picks one provider, whose keys, algorithms and policy alone then apply."""

import pytest

from tests.fakes import FakeClock
from tests.minting import RsaSigner, claims, header, hs256, rs256
from jwtgate.claims import Policy
from jwtgate.jose import token_digest
from jwtgate.keys import StaticKeys, keys_from_jwks
from jwtgate.reasons import TokenRejected, UnknownKey
from jwtgate.revocation import NoRevocations
from jwtgate.verdicts import VerdictCache
from jwtgate.verifier import Verifier

SECRET = b"k" * 40


class Keys:
    """A fixed key set, as the Verifier reads one: get(kid)."""

    def __init__(self, *signers):
        self._keys = keys_from_jwks({"keys": [signer.jwk for signer in signers]})[0]

    def get(self, kid):
        return self._keys.get(kid)


class RevokeAll:
    def refusal(self, identity):
        return "revoked"


@pytest.fixture(scope="module")
def ours():
    return RsaSigner(kid="ours")


@pytest.fixture(scope="module")
def theirs():
    return RsaSigner(kid="theirs")


def policy(issuer, **fields):
    return Policy(**({"issuer": issuer, "audiences": ("jwtgate-api",), "accepted_typ": ("at+jwt",),
                      "leeway_seconds": 0} | fields))


def verifier(ours, theirs, clock, revocations=None, **fields):
    issuers = {"jwtgate": (policy("jwtgate", **fields), Keys(ours)),
               "https://idp.example/": (policy("https://idp.example/", accepted_typ=("", "jwt")), Keys(theirs))}
    return Verifier(issuers, VerdictCache(100, 300, timer=clock), revocations or NoRevocations(), clock)


def rejected(verifier, token, reason):
    with pytest.raises(TokenRejected) as raised:
        verifier.verify(token)
    assert raised.value.reason == reason
    return raised.value


def test_each_issuers_token_is_verified_with_its_own_keys_and_policy(ours, theirs):
    clock = FakeClock()
    checker = verifier(ours, theirs, clock)
    assert checker.verify(rs256(ours, claims(clock()))).sub == "alice"
    foreign = claims(clock(), iss="https://idp.example/")
    assert checker.verify(rs256(theirs, foreign, header(theirs, typ=None))).sub == "alice"
    # Our typ rule is not theirs, and theirs is not ours.
    rejected(checker, rs256(ours, claims(clock()), header(ours, typ=None)), "wrong_type")
    rejected(checker, rs256(theirs, foreign), "wrong_type")


def test_a_token_naming_one_issuer_is_never_tried_with_another_issuers_keys(ours, theirs):
    clock = FakeClock()
    checker = verifier(ours, theirs, clock)
    error = rejected(checker, rs256(ours, claims(clock(), iss="https://idp.example/"), header(ours, typ=None)),
                     "unknown_key")
    assert isinstance(error, UnknownKey) and error.kid == "ours"


@pytest.mark.parametrize("iss, reason", [(None, "invalid_claims"), ("https://other.example/", "wrong_issuer"),
                                         (["jwtgate"], "wrong_issuer"), (1, "wrong_issuer")])
def test_a_token_without_a_known_string_issuer_is_refused(ours, theirs, iss, reason):
    clock = FakeClock()
    rejected(verifier(ours, theirs, clock), rs256(ours, claims(clock(), iss=iss)), reason)


def test_a_token_without_kid_is_an_unknown_key_of_its_issuer(ours, theirs):
    clock = FakeClock()
    error = rejected(verifier(ours, theirs, clock), rs256(ours, claims(clock()), header(ours, kid=None)),
                     "unknown_key")
    assert error.kid == "" and error.keys is not None and error.keys.get("ours") is not None


def test_a_key_of_an_algorithm_the_provider_does_not_allow_is_refused(ours, theirs):
    clock = FakeClock()
    token = rs256(ours, claims(clock()))
    rejected(verifier(ours, theirs, clock, algorithms=frozenset({"ES256"})), token, "unsupported_algorithm")
    assert verifier(ours, theirs, clock, algorithms=frozenset({"RS256"})).verify(token).sub == "alice"


def test_a_forged_signature_is_refused(ours, theirs):
    clock = FakeClock()
    rejected(verifier(ours, theirs, clock), rs256(RsaSigner(kid="ours"), claims(clock())), "invalid_signature")


def test_the_forwarded_claims_are_the_payload_segment_as_signed(ours, theirs):
    clock = FakeClock()
    token = rs256(ours, claims(clock()))
    assert verifier(ours, theirs, clock, forward_claims=True).verify(token).claims == token.split(".")[1]
    assert verifier(ours, theirs, clock).verify(token).claims is None


def test_claims_are_checked_at_the_verifiers_clock(ours, theirs):
    clock = FakeClock()
    token = rs256(ours, claims(clock()))
    clock.tick(900)
    rejected(verifier(ours, theirs, clock), token, "expired")


def test_a_verdict_is_cached_and_revocation_is_still_asked_on_a_hit():
    clock = FakeClock()
    cache = VerdictCache(100, 300, timer=clock)
    pol = policy("jwtgate")
    token = hs256(SECRET, claims(clock()))
    identity = Verifier.single(StaticKeys(SECRET), cache, pol, NoRevocations(), clock).verify(token)
    assert cache.get(token_digest(token)) is identity
    # A verifier holding no key at all answers from the cache, and refuses what its revocations refuse.
    assert Verifier.single(StaticKeys(b"x" * 40, kid="other"), cache, pol, NoRevocations(), clock).verify(token) \
        is identity
    rejected(Verifier.single(StaticKeys(SECRET), cache, pol, RevokeAll(), clock), token, "revoked")
