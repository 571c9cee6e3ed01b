"""VerdictCache itself: when entries die, and how cached verdicts stay small."""

import gc
import json

import pytest

from tests.fakes import FakeClock
from tests.minting import claims, hs256
from jwtgate import verdicts as cache_module
from jwtgate.verdicts import VerdictCache
from jwtgate.keys import StaticKeys
from jwtgate.claims import OWN_TOKEN_CLAIMS, Identity, Policy, check_claims
from jwtgate.jose import token_digest
from jwtgate.revocation import NoRevocations
from jwtgate.verifier import Verifier


SECRET = b"k" * 40
POLICY = Policy(issuer="jwtgate", audiences=("jwtgate-api",), accepted_typ=("at+jwt",), leeway_seconds=0,
                required_claims=OWN_TOKEN_CLAIMS)


def identity(cache, clock, number=0, exp_in=900, roles=("user",)):
    """A verdict as the verifier builds it: from JSON claims (equal values, distinct objects), with share()."""
    now = int(clock())
    claim_set = json.loads(json.dumps({"iss": "jwtgate", "aud": "jwtgate-api", "sub": f"user-{number}",
                                       "jti": f"jti-{number}", "iat": now, "exp": now + exp_in, "roles": list(roles),
                                       "scope": "orders:read"}))
    return check_claims(claim_set, POLICY, now, share=cache.share)


def test_an_entry_dies_at_exp_or_at_the_max_ttl_whichever_comes_first():
    clock = FakeClock()
    cache = VerdictCache(100, 300, timer=clock)
    short, long = token_digest("a.b.c"), token_digest("d.e.f")
    cache.put(short, identity(cache, clock, 1, exp_in=60))
    cache.put(long, identity(cache, clock, 2, exp_in=900))
    clock.tick(59)
    assert cache.get(short).sub == "user-1" and cache.get(long).sub == "user-2"
    clock.tick(1)
    assert cache.get(short) is None
    assert cache.get(long) is not None
    clock.tick(240)      # 300 s after it was stored, though the token has 600 s left
    assert cache.get(long) is None
    assert len(cache) == 0


def test_a_full_cache_drops_the_least_recently_used_and_misses_read_as_none():
    clock = FakeClock()
    cache = VerdictCache(3, 300, timer=clock)
    digests = [token_digest(f"t.{number}.x") for number in range(5)]
    assert cache.get(digests[0]) is None
    for number in range(3):
        cache.put(digests[number], identity(cache, clock, number))
    assert cache.get(digests[0]).sub == "user-0"      # now the most recently used
    cache.put(digests[3], identity(cache, clock, 3))  # drops user-1
    cache.put(digests[4], identity(cache, clock, 4))  # drops user-2
    assert [cache.get(digest) is not None for digest in digests] == [True, False, False, True, True]
    assert len(cache) == 3


@pytest.mark.parametrize("size, ttl", [(0, 300), (100, 0)])
def test_a_zero_size_or_ttl_caches_nothing(size, ttl):
    clock = FakeClock()
    cache = VerdictCache(size, ttl, timer=clock)
    cache.put(token_digest("a.b.c"), identity(cache, clock))
    assert cache.get(token_digest("a.b.c")) is None and len(cache) == 0


def test_verdicts_share_equal_role_lists_and_timestamps():
    clock = FakeClock()
    cache = VerdictCache(100, 300, timer=clock)
    for number in range(3):
        cache.put(token_digest(f"t.{number}.x"), identity(cache, clock, number))
    first, second, third = (cache.get(token_digest(f"t.{number}.x")) for number in range(3))
    assert first.roles is second.roles is third.roles
    assert first.iat is second.iat and first.exp is third.exp
    # Different values stay different, and each verdict keeps its own.
    other = identity(cache, clock, 9, exp_in=600, roles=("admin",))
    cache.put(token_digest("t.9.x"), other)
    stored = cache.get(token_digest("t.9.x"))
    assert stored.roles == ("admin",) and stored.exp == other.exp and stored.sub == "user-9"


def test_the_verifier_stores_verdicts_that_share_values():
    clock = FakeClock()
    cache = VerdictCache(100, 300, timer=clock)
    verifier = Verifier.single(StaticKeys(SECRET), cache, POLICY, NoRevocations(), clock)
    tokens = [hs256(SECRET, claims(clock(), sub=f"user-{number}")) for number in range(3)]
    first, second, third = (verifier.verify(token) for token in tokens)
    assert first.roles is second.roles is third.roles and first.scopes is third.scopes
    assert first.iat is second.iat is third.iat and first.exp is second.exp is third.exp
    assert [cache.get(token_digest(token)) for token in tokens] == [first, second, third]
    assert first.sub == "user-0" and third.sub == "user-2"


def test_the_shared_table_stays_bounded_whatever_arrives():
    clock = FakeClock()
    cache = VerdictCache(10, 300, timer=clock)
    for number in range(3 * cache_module._MAX_SHARED_VALUES):
        clock.tick(1)   # a new iat, exp and expiry second for every verdict
        cache.put(token_digest(f"t.{number}.x"), identity(cache, clock, number, roles=(f"role-{number}",)))
    assert len(cache._values) <= cache_module._MAX_SHARED_VALUES
    assert len(cache) == 10
    newest = cache.get(token_digest(f"t.{3 * cache_module._MAX_SHARED_VALUES - 1}.x"))
    assert newest.roles == (f"role-{3 * cache_module._MAX_SHARED_VALUES - 1}",)


@pytest.mark.parametrize("sid", [None, "session-1"])
def test_a_verdict_keeps_sub_jti_and_sid_in_one_string(sid):
    verdict = Identity(sub="alice", roles=("user",), scopes=(), jti="j-1", iat=1, exp=2, sid=sid)
    assert (verdict.sub, verdict.jti, verdict.sid) == ("alice", "j-1", sid)
    assert list(verdict.ids()) == ["alice", "j-1", sid]
    assert verdict.values("sub") == ("alice",)
    # One string object for the three names, not one each; the provider's name is the policy's own object.
    assert [value for value in gc.get_referents(verdict) if isinstance(value, str)] == [verdict.names,
                                                                                         verdict.provider]


@pytest.mark.parametrize("names", [dict(sub="al ice"), dict(jti="j 1"), dict(sid="s 1")])
def test_a_verdict_refuses_names_that_would_split_wrongly(names):
    with pytest.raises(ValueError):
        Identity(**(dict(sub="alice", roles=(), scopes=(), jti="j1", iat=1, exp=2) | names))


def test_the_shared_table_starts_again_once_it_holds_its_bound():
    bound = cache_module._MAX_SHARED_VALUES
    cache = VerdictCache(10, 300, timer=FakeClock())
    kept = [cache.share((number,)) for number in range(bound)]
    assert len(cache._values) == bound == 4096
    # Full: the next value, even one already kept, starts a new table.
    again = (0,)
    assert cache.share(again) is again and again is not kept[0]
    assert len(cache._values) == 1
    assert cache.share((1,)) is not kept[1] and cache.share((0,)) is again
