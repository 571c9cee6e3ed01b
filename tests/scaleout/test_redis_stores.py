"""Every Redis store on a real redis-server: revocations and their pushed feed, lockouts, DPoP replay keys."""

import asyncio
import json
import threading
import time

import falcon.testing
import pytest

from auth_api import passwords
from auth_api.app import create_app as create_auth_api
from auth_api.config import Settings as AuthSettings
from auth_api.keys import KeyRing
from auth_api.limits import LockoutPolicy, LoginThrottle, MemoryFailureCounters
from auth_api.shared_limits import RedisFailureCounters
from auth_api.store import UserStore
from jwtgate.fetch import Response
from jwtgate.redis_revocation import RedisRevocationStore, client_from_url
from jwtgate.replay import RedisReplayCache
from jwtgate.revocation import Revocation, SqliteRevocationStore
from tests.dpop_support import DpopKey
from tests.fakes import FakeClock
from tests.minting import RsaSigner, claims, rs256
from tests.services import free_port
from validator.app import create_app
from validator.config import Settings
from jwtgate.keys import JwksSource
from validator.redis_feed import PushedRevocationFeed
from validator.revocation import RevocationSet
from jwtgate.claims import Identity


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


def identity(jti="j1", sid="s1", sub="alice", iat=100):
    return Identity(sub=sub, roles=(), scopes=(), jti=jti, iat=iat, exp=iat + 600, sid=sid)


def test_changes_after_a_cursor_like_the_sqlite_store(redis_url):
    clock = [1000.0]
    store = RedisRevocationStore(redis_url, clock=lambda: clock[0])
    store.create()
    assert store.changes(0) == ([], 0)
    store.add([Revocation("jti", "a", 2000), Revocation("sid", "s", 1500)])
    first, cursor = store.changes(0)
    assert [(r.kind, r.value) for r in first] == [("jti", "a"), ("sid", "s")]
    assert store.changes(cursor) == ([], cursor)
    store.add([Revocation("sub", "alice", 3000, cutoff=990)])
    later, _ = store.changes(cursor)
    assert later == [Revocation("sub", "alice", 3000, cutoff=990)]
    # Expired entries are not handed out.
    clock[0] = 1600
    assert [(r.kind, r.value) for r in store.changes(0)[0]] == [("jti", "a"), ("sub", "alice")]
    with pytest.raises(ValueError):
        store.add([Revocation("nope", "x", 2000)])


def test_entries_older_than_the_retention_are_trimmed(redis_url):
    store = RedisRevocationStore(redis_url, retention_seconds=1)
    store.add([Revocation("jti", "old", int(time.time()) + 1)])
    time.sleep(1.2)
    store.add([Revocation("jti", "new", int(time.time()) + 60)])
    assert store.client.xlen("jwtgate:revocations") == 1


def test_a_pushed_revocation_is_applied_long_before_the_next_poll(redis_url):
    store = RedisRevocationStore(redis_url)
    revocations = RevocationSet()
    # A 5 s poll: only the push can make the revocation land within the test's wait.
    feed = PushedRevocationFeed(store, revocations, url=redis_url, interval=5, max_staleness=30)

    async def scenario():
        await feed.sync()
        runner = asyncio.create_task(feed.run())
        await asyncio.sleep(0.3)
        added = time.monotonic()
        await asyncio.to_thread(store.add, [Revocation("jti", "j1", int(time.time()) + 60)])
        while feed.refusal(identity()) is None and time.monotonic() - added < 3:
            await asyncio.sleep(0.005)
        delay = time.monotonic() - added
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return delay

    delay = asyncio.run(scenario())
    assert feed.refusal(identity()) == "revoked"
    print(f"redis push: revocation applied {delay * 1000:.1f} ms after add (poll interval 5 s)")


def test_redis_down_keeps_the_last_set_for_the_staleness_bound_then_fails_closed(redis_url):
    now = [0.0]
    store = RedisRevocationStore(redis_url)
    store.add([Revocation("jti", "j1", int(time.time()) + 60)])
    feed = PushedRevocationFeed(store, RevocationSet(), url=redis_url, interval=0.1, max_staleness=30,
                                clock=lambda: now[0])
    asyncio.run(feed.sync())
    assert feed.refusal(identity()) == "revoked"
    assert feed.refusal(identity(jti="j2", sid="s2")) is None
    # Redis unreachable (nothing listens on port 1): the last synced set still answers...
    feed._store = RedisRevocationStore("redis://127.0.0.1:1/0")
    now[0] = 29
    asyncio.run(feed.sync())
    assert feed.refusal(identity()) == "revoked"
    assert feed.refusal(identity(jti="j2", sid="s2")) is None
    # ...until the bound, then every token is refused.
    now[0] = 31
    asyncio.run(feed.sync())
    assert feed.refusal(identity(jti="j2", sid="s2")) == "revocation_unavailable"
    # Readable again: back to normal at the next sync.
    feed._store = store
    asyncio.run(feed.sync())
    assert feed.refusal(identity(jti="j2", sid="s2")) is None


def test_redis_lockout_counters_match_the_in_memory_reference(redis_url):
    policy = LockoutPolicy(threshold=3, base_seconds=30, max_seconds=100, forget_after_seconds=1000)
    redis_counters = RedisFailureCounters(client_from_url(redis_url))
    memory = MemoryFailureCounters()
    for now in (0, 1, 2, 3, 40, 41, 100, 101, 300, 2000, 2001):
        assert redis_counters.charge("k", now, policy) == memory.charge("k", now, policy), now
        assert redis_counters.failures("k") == memory.failures("k")
    redis_counters.clear("k")
    assert redis_counters.failures("k") == 0


def test_concurrent_failures_from_two_replicas_are_all_counted(redis_url):
    policy = LockoutPolicy(threshold=100, base_seconds=30, max_seconds=100)
    replicas = [RedisFailureCounters(client_from_url(redis_url)) for _ in range(2)]
    barrier = threading.Barrier(16)

    def attempt(index):
        barrier.wait()
        for _ in range(5):
            replicas[index % 2].charge("k", 10, policy)

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replicas[0].failures("k") == 80


PASSWORD = "correct horse battery staple"


def auth_api_client(settings, throttle=None):
    """An auth API on its own data directory (a host of its own) with the user alice."""
    store = UserStore.open(settings)
    store.add_user("alice", passwords.hash(PASSWORD))
    revocations = SqliteRevocationStore(settings.revocation_db)
    revocations.create()
    return falcon.testing.TestClient(create_auth_api(settings, store=store, keyring=KeyRing.open(settings),
                                                     revocations=revocations, clock=time.time, throttle=throttle))


def test_auth_api_refuses_logins_with_503_while_the_lockout_redis_is_down(tmp_path):
    settings = AuthSettings(data_dir=str(tmp_path))
    # Nothing listens on port 1: every charge fails to connect.
    throttle = LoginThrottle(RedisFailureCounters(client_from_url("redis://127.0.0.1:1/0")),
                             LockoutPolicy.from_settings(settings))
    client = auth_api_client(settings, throttle)
    response = client.simulate_post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 503
    assert response.json["error"] == "auth_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_dpop_proofs_are_used_once_across_validator_hosts(redis_url):
    # Two clients: two validators on different hosts, one Redis.
    here, there = RedisReplayCache(redis_url), RedisReplayCache(redis_url)
    expires_at = time.time() + 60.2
    assert here.first_use(b"k" * 32, expires_at)
    assert not there.first_use(b"k" * 32, expires_at)
    assert not here.first_use(b"k" * 32, expires_at)
    assert there.first_use(b"j" * 32, expires_at)
    # Kept until the proof's window ends (rounded up to the second), not longer.
    assert 60 <= client_from_url(redis_url).ttl(RedisReplayCache.PREFIX + (b"k" * 32).hex()) <= 61


def test_login_proofs_are_used_once_across_auth_api_hosts(redis_url, tmp_path):
    # AUTH_DPOP_REPLAY_DB: two auth API hosts, one Redis (each its own data directory).
    here, there = (auth_api_client(AuthSettings(data_dir=str(tmp_path / name), dpop_replay_store=redis_url,
                                                public_origins=frozenset({"http://falconframework.org"})))
                   for name in ("here", "there"))
    key = DpopKey.generate("ES256")
    proof = key.proof("POST", "http://falconframework.org/api/auth/login")
    body = {"username": "alice", "password": PASSWORD}
    assert here.simulate_post("/api/auth/login", json=body, headers={"DPoP": proof}).status_code == 200
    replayed = there.simulate_post("/api/auth/login", json=body, headers={"DPoP": proof})
    assert replayed.status_code == 400 and replayed.json["error"] == "invalid_dpop_proof"
    fresh = key.proof("POST", "http://falconframework.org/api/auth/login")
    assert there.simulate_post("/api/auth/login", json=body, headers={"DPoP": fresh}).status_code == 200
    # Under the auth API's own prefix, apart from the validators' (jwtgate:dpop:).
    names = client_from_url(redis_url).keys("jwtgate:*")
    assert len(names) == 2 and all(name.startswith(b"jwtgate:dpop-auth:") for name in names)


def test_a_dpop_replay_key_is_forgotten_when_its_window_ends(redis_url):
    cache = RedisReplayCache(redis_url)
    assert cache.first_use(b"e" * 32, time.time() + 1)
    assert not cache.first_use(b"e" * 32, time.time() + 1)
    deadline = time.monotonic() + 5
    while not cache.first_use(b"e" * 32, time.time() + 1):
        assert time.monotonic() < deadline, "the key outlived its window by seconds"
        time.sleep(0.1)


def test_a_bound_token_is_refused_while_the_replay_redis_is_down(signer_jwks):
    signer, document = signer_jwks
    key, clock = DpopKey.generate("ES256"), FakeClock(time.time())
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, document), clock=clock)
    asyncio.run(keys.refresh())
    down = RedisReplayCache(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                              public_origins=frozenset({"https://api.example"})),
                     keys=keys, replay=down, clock=clock)
    token = rs256(signer, claims(clock(), cnf={"jkt": key.thumbprint}))
    url = "https://api.example/api/protected/"
    result = falcon.testing.TestClient(app).simulate_get("/verify", headers={
        "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, token, iat=int(clock())),
        "X-Original-Method": "GET", "X-Original-URI": "/api/protected/"})
    # Fail closed: the proof might be a replay, so the request is refused, not let through.
    assert result.status_code == 401
    assert result.headers["X-Auth-Error"] == "internal_error"


@pytest.fixture(scope="module")
def signer_jwks():
    signer = RsaSigner(kid="key-1")
    return signer, json.dumps(signer.jwks()).encode()
