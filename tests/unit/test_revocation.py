"""Revocations: the SQLite store, each worker's set, the feed that polls, and /verify refusing."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import falcon.asgi
import falcon.testing
import pytest

from jwtgate.fetch import Response
from jwtgate.revocation import Revocation, SqliteRevocationStore
from tests.fakes import FakeClock
from tests.minting import RsaSigner, claims, rs256
from validator.app import create_app
from validator.config import Settings
from jwtgate.claims import Identity, Policy
from jwtgate.keys import JwksSource
from validator.providers import TrustedProviders
from validator.resources import Ready
from validator.revocation import ProviderRevocations, RevocationFeed, RevocationSet

POLICY = Policy(issuer="jwtgate", audiences=("jwtgate-api",), accepted_typ=("at+jwt",), leeway_seconds=0)


def identity(**overrides):
    base = dict(sub="alice", roles=(), scopes=(), jti="j1", iat=1000, exp=2000, sid="s1")
    return Identity(**(base | overrides))


# Where the clock fixture (tests/unit/conftest.py) starts.
CLOCK_START = 1_000


@pytest.fixture
def store(tmp_path, clock):
    store = SqliteRevocationStore(tmp_path / "revocations.db", clock=clock)
    store.create()
    return store


def test_store_file_is_private(store, tmp_path):
    assert (tmp_path / "revocations.db").stat().st_mode & 0o777 == 0o600


def test_store_returns_changes_after_the_cursor(store):
    store.add([Revocation("jti", "a", 2000)])
    first, cursor = store.changes(0)
    assert first == [Revocation("jti", "a", 2000)]
    store.add([Revocation("sid", "b", 2000), Revocation("sub", "alice", 2000, cutoff=1500)])
    second, cursor2 = store.changes(cursor)
    assert [entry.kind for entry in second] == ["sid", "sub"]
    assert second[1].cutoff == 1500
    assert store.changes(cursor2) == ([], cursor2)


def test_store_purges_expired_rows_and_skips_them(store, clock):
    store.add([Revocation("jti", "old", 1010)])
    clock.tick(20)
    store.add([Revocation("jti", "new", 5000)])
    changes, _ = store.changes(0)
    assert [entry.value for entry in changes] == ["new"]


def test_store_refuses_unknown_kinds(store):
    with pytest.raises(ValueError):
        store.add([Revocation("email", "a@b", 2000)])


def test_set_matches_each_kind():
    revoked = RevocationSet()
    revoked.apply([Revocation("jti", "j9", 2000), Revocation("sid", "s9", 2000),
                   Revocation("sub", "bob", 2000, cutoff=1500)])
    assert revoked.is_revoked(identity(jti="j9"))
    assert revoked.is_revoked(identity(sid="s9"))
    assert revoked.is_revoked(identity(sub="bob", iat=1500))
    assert not revoked.is_revoked(identity(sub="bob", iat=1501))
    assert not revoked.is_revoked(identity())
    assert not revoked.is_revoked(identity(sid=None))


def test_set_purges_what_expired():
    revoked = RevocationSet()
    revoked.apply([Revocation("jti", "j9", 1500), Revocation("sub", "bob", 3000, cutoff=1400)])
    revoked.purge(2000)
    assert len(revoked) == 1
    assert not revoked.is_revoked(identity(jti="j9"))


def test_feed_refuses_until_synced_and_when_stale(store):
    monotonic = FakeClock(0)
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30, clock=monotonic)
    assert feed.refusal(identity()) == "revocation_unavailable"
    asyncio.run(feed.sync())
    assert feed.refusal(identity()) is None
    store.add([Revocation("jti", "j1", 5000)])
    asyncio.run(feed.sync())
    assert feed.refusal(identity()) == "revoked"
    monotonic.tick(31)
    assert feed.refusal(identity(jti="other")) == "revocation_unavailable"


def test_feed_keeps_its_set_while_the_store_is_unreadable(store, tmp_path):
    monotonic = FakeClock(0)
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30, clock=monotonic)
    store.add([Revocation("jti", "j1", 5000)])
    asyncio.run(feed.sync())
    (tmp_path / "revocations.db").unlink()
    monotonic.tick(10)
    asyncio.run(feed.sync())
    assert feed.refusal(identity()) == "revoked"
    assert feed.refusal(identity(jti="j2")) is None
    monotonic.tick(25)
    assert feed.refusal(identity(jti="j2")) == "revocation_unavailable"


def test_readyz_follows_the_keys_and_the_revocation_feed(store):
    monotonic = FakeClock(0)
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30, clock=monotonic)
    keys = JwksSource("http://auth/jwks", fetch=_Jwks(RsaSigner()))
    # The resource alone: the app's start-up would load the keys and read the feed first.
    app = falcon.asgi.App()
    app.add_route("/readyz", Ready(TrustedProviders([("default", POLICY, keys)]), feed))
    client = falcon.testing.TestClient(app)

    def ready():
        result = client.simulate_get("/readyz")
        return result.status_code, result.json["problems"]

    assert ready() == (503, ["no_keys", "revocations_stale"])
    asyncio.run(keys.refresh())
    assert ready() == (503, ["revocations_stale"])
    asyncio.run(feed.sync())
    assert ready() == (200, [])
    assert client.simulate_get("/readyz").json == {"status": "ready", "keys": 1, "problems": [],
                                                    "providers_without_keys": [], "revocations_stale": False}
    monotonic.tick(31)
    assert ready() == (503, ["revocations_stale"])
    # The app serves it beside /healthz, and is ready once started.
    started = falcon.testing.TestClient(create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"),
                                                   keys=keys))
    assert started.simulate_get("/readyz").status_code == 200


class _Jwks:
    def __init__(self, signer):
        self.signer = signer

    def __call__(self, url, *, unix_socket=None, timeout=None):
        return Response(200, {}, json.dumps(self.signer.jwks()).encode())


def test_verify_refuses_a_cached_token_once_revoked(tmp_path):
    signer = RsaSigner()
    wall = FakeClock(1_800_000_000)
    store = SqliteRevocationStore(tmp_path / "revocations.db", clock=wall)
    store.create()
    keys = JwksSource("http://auth/jwks", fetch=_Jwks(signer))
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30)
    client = falcon.testing.TestClient(
        create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"), keys=keys, revocations=feed,
                   clock=wall))
    token_claims = claims(wall(), sid="session-1")
    token = rs256(signer, token_claims)
    sibling = rs256(signer, claims(wall(), sid="session-1"))
    other = rs256(signer, claims(wall(), sid="session-2"))
    for sent in (token, sibling, other):
        assert client.simulate_get("/verify", headers={"Authorization": f"Bearer {sent}"}).status_code == 200
    store.add([Revocation("sid", "session-1", int(wall()) + 900)])
    asyncio.run(feed.sync())
    for sent, status in ((token, 401), (sibling, 401), (other, 200)):
        result = client.simulate_get("/verify", headers={"Authorization": f"Bearer {sent}"})
        assert result.status_code == status
    result = client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
    assert result.headers["X-Auth-Error"] == "revoked"


def test_verify_refuses_every_token_of_a_user_issued_up_to_the_cutoff(tmp_path):
    signer = RsaSigner()
    wall = FakeClock(1_800_000_000)
    store = SqliteRevocationStore(tmp_path / "revocations.db", clock=wall)
    store.create()
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30)
    client = falcon.testing.TestClient(
        create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"),
                   keys=JwksSource("http://auth/jwks", fetch=_Jwks(signer)), revocations=feed, clock=wall))
    earlier = rs256(signer, claims(wall() - 60))
    at_cutoff = rs256(signer, claims(wall()))
    someone_else = rs256(signer, claims(wall(), sub="bob"))
    store.add([Revocation("sub", "alice", int(wall()) + 900, cutoff=int(wall()))])
    asyncio.run(feed.sync())
    wall.tick(1)
    later = rs256(signer, claims(wall()))
    for sent, status, reason in ((earlier, 401, "revoked"), (at_cutoff, 401, "revoked"), (someone_else, 200, None),
                                 (later, 200, None)):
        result = client.simulate_get("/verify", headers={"Authorization": f"Bearer {sent}"})
        assert (result.status_code, result.headers.get("X-Auth-Error")) == (status, reason)


def test_sid_claim_must_be_header_safe():
    signer = RsaSigner()
    keys = JwksSource("http://auth/jwks", fetch=_Jwks(signer))
    client = falcon.testing.TestClient(create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"),
                                                  keys=keys))
    for sid in (7, "", "a\nb", ["s"]):
        token = rs256(signer, claims(time.time(), sid=sid))
        result = client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
        assert result.headers["X-Auth-Error"] == "invalid_claims", sid


def test_revocation_settings_from_env(tmp_path):
    feed = str(tmp_path / "revocations.db")
    settings = Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", "VALIDATOR_REVOCATION_DB": feed})
    assert settings.revocation_db == feed
    # Off unless configured: a standalone validator has no feed to wait for.
    for off in ({}, {"VALIDATOR_REVOCATION_DB": "none"}, {"VALIDATOR_REVOCATION_DB": ""}):
        assert Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", **off}).revocation_db is None


@pytest.mark.parametrize("feed, warned", [(None, True), ("none", True), ("redis://127.0.0.1:9/0", False)])
def test_a_validator_without_a_feed_says_revocation_is_off(tmp_path, feed, warned):
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(root), "JWTGATE_DATA_DIR": str(tmp_path),
           "VALIDATOR_JWKS_URL": "http://127.0.0.1:9/jwks", **({"VALIDATOR_REVOCATION_DB": feed} if feed else {})}
    result = subprocess.run([sys.executable, "-c", "from validator.app import get_app; get_app()"], env=env,
                            cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]
    off = "VALIDATOR_REVOCATION_DB is not set: revocation is off, a revoked or logged-out token passes until its exp"
    assert (off in events) == warned, events


def test_a_provider_the_store_does_not_speak_for_is_neither_revoked_nor_refused_when_it_is_stale(store):
    monotonic = FakeClock(0)
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30, clock=monotonic)
    refusals = ProviderRevocations(feed, {"keycloak"})
    store.add([Revocation("sub", "alice", 5000, cutoff=1500), Revocation("jti", "j1", 5000)])
    asyncio.run(feed.sync())
    assert refusals.refusal(identity(provider="jwtgate")) == "revoked"
    assert refusals.refusal(identity(provider="keycloak")) is None
    monotonic.tick(31)
    assert refusals.refusal(identity(provider="jwtgate", sub="bob", jti="j2", sid=None)) == "revocation_unavailable"
    assert refusals.refusal(identity(provider="keycloak")) is None


def test_a_stale_revocation_set_keeps_the_worker_ready_for_a_provider_outside_the_store(store):
    monotonic = FakeClock(0)
    feed = RevocationFeed(store, RevocationSet(), interval=0.2, max_staleness=30, clock=monotonic)
    ours = JwksSource("http://auth/jwks", fetch=_Jwks(RsaSigner()))
    theirs = JwksSource("http://idp/jwks", fetch=_Jwks(RsaSigner()))
    other = Policy(issuer="https://idp.example", audiences=("api",), accepted_typ=("at+jwt",), leeway_seconds=0)
    app = falcon.asgi.App()
    app.add_route("/readyz", Ready(TrustedProviders([("jwtgate", POLICY, ours), ("idp", other, theirs)],
                                                    unrevoked={"idp"}), feed))
    client = falcon.testing.TestClient(app)
    asyncio.run(ours.refresh())
    # The feed has never been read: our tokens are refused, and the other provider holds no key yet.
    assert client.simulate_get("/readyz").json["problems"] == ["revocations_stale"]
    asyncio.run(theirs.refresh())
    answer = client.simulate_get("/readyz")
    assert answer.status_code == 200 and answer.json["revocations_stale"] is True
    asyncio.run(feed.sync())
    assert client.simulate_get("/readyz").json["revocations_stale"] is False
