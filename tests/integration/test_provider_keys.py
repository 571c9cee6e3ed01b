"""JwksSource against a real HTTPS provider on loopback: discovery, every algorithm, rotation, outage, staleness."""

import asyncio
import functools
import json
import time

import pytest

from jwtgate import discovery, fetch
from tests.fakes import FakeClock
from tests.http_servers import LocalServer, Route, TestCA
from tests.unit.test_algorithms import ALGORITHMS, Signer
from jwtgate.keys import JwksSource
from jwtgate.jose import parse, verify_signature


class Provider:
    """An identity provider's discovery document and JWKS, served over HTTPS by a CA made for the test."""

    def __init__(self, tmp_path, signers, kind=discovery.OPENID, path=""):
        self.ca = TestCA(tmp_path)
        self.signers = dict(signers)
        self.server = LocalServer(tls=self.ca.server_context)
        self.issuer = f"{self.server.url}{path}"
        self.metadata_path = discovery.metadata_url(self.issuer, kind)[len(self.server.url):]
        self.jwks_path = f"{path}/protocol/openid-connect/certs"
        self.publish(issuer=self.issuer, jwks_uri=f"{self.server.url}{self.jwks_path}")
        self.serve_keys()

    def publish(self, **document):
        self.server.routes[self.metadata_path] = Route(json.dumps(document),
                                                       headers={"Cache-Control": "public, max-age=3600"})

    def serve_keys(self, max_age=120):
        members = [signer.jwk for signer in self.signers.values()]
        members.append(dict(self.signers["RS256"].jwk, kid="enc-1", use="enc"))
        self.server.routes[self.jwks_path] = Route(json.dumps({"keys": members}),
                                                   headers={"Cache-Control": f"public, max-age={max_age}"})

    def paths(self):
        return [path for path, _ in self.server.requests]

    def keys(self, clock, ca=True, **options):
        get = functools.partial(fetch.get, ca_file=str(self.ca.ca_file) if ca else None, environ={})
        return JwksSource(issuer=self.issuer, fetch=get, clock=clock, **options)


@pytest.fixture(scope="module")
def signers():
    return {alg: Signer(alg, kid=f"{alg}-1") for alg in ALGORITHMS}


@pytest.fixture
def provider(tmp_path, signers):
    provider = Provider(tmp_path, signers)
    with provider.server:
        yield provider


@pytest.fixture
def clock():
    return FakeClock()


def verifies(keys, signer):
    token = signer.token()
    header, _, signature = parse(token)
    key = keys.get(header["kid"])
    if key is None:
        return False
    verify_signature(token, header, signature, key)
    return True


def test_keys_found_by_discovery_verify_every_algorithm(provider, clock):
    keys = provider.keys(clock, refresh_bounds=(60, 3600))
    asyncio.run(keys.refresh())
    assert provider.paths() == ["/.well-known/openid-configuration", provider.jwks_path]
    assert sorted(key for key in ALGORITHMS if keys.get(f"{key}-1")) == sorted(ALGORITHMS)
    assert keys.get("enc-1") is None and len(keys) == len(ALGORITHMS)
    for signer in provider.signers.values():
        assert verifies(keys, signer)
    assert keys.refresh_delay(600) == 120 and not keys.stale()


def test_rfc8414_metadata_with_the_path_inserted(tmp_path, signers, clock):
    provider = Provider(tmp_path, signers, kind=discovery.OAUTH, path="/tenant-1")
    with provider.server:
        keys = provider.keys(clock, discovery=discovery.OAUTH)
        asyncio.run(keys.refresh())
    assert provider.paths()[0] == "/.well-known/oauth-authorization-server/tenant-1"
    assert verifies(keys, provider.signers["ES256"])


def test_without_the_ca_bundle_nothing_is_trusted(provider, clock):
    keys = provider.keys(clock, ca=False)
    asyncio.run(keys.refresh())
    assert keys.stale() and len(keys) == 0 and keys.jwks_uri is None
    assert provider.paths() == []


@pytest.mark.parametrize("document", [
    {"issuer": "https://other.example", "jwks_uri": "https://other.example/certs"},
    {"issuer": "ISSUER/", "jwks_uri": "JWKS"},
    {"issuer": "ISSUER", "jwks_uri": "http://keys.example/certs"},
    {"issuer": "ISSUER"},
], ids=["other-issuer", "issuer-with-slash", "http-jwks-uri", "no-jwks-uri"])
def test_a_mismatched_or_malformed_discovery_document_gives_no_keys(provider, clock, document):
    jwks = f"{provider.server.url}{provider.jwks_path}"
    provider.publish(**{name: value.replace("ISSUER", provider.issuer).replace("JWKS", jwks)
                        for name, value in document.items()})
    keys = provider.keys(clock)
    asyncio.run(keys.refresh())
    assert keys.stale() and len(keys) == 0
    assert provider.jwks_path not in provider.paths()


def test_a_new_key_is_picked_up_on_its_first_token_and_a_removed_one_goes(provider, clock):
    keys = provider.keys(clock, min_interval=5)
    asyncio.run(keys.refresh())
    rotated = Signer("PS256", kid="PS256-2")
    old = provider.signers.pop("PS256")
    provider.signers["PS256-2"] = rotated
    provider.serve_keys()
    assert not verifies(keys, rotated)
    clock.tick(5)
    asyncio.run(keys.refresh())
    assert verifies(keys, rotated) and not verifies(keys, old)
    assert provider.paths().count(provider.jwks_path) == 2
    assert provider.paths().count("/.well-known/openid-configuration") == 1


def test_an_oversized_key_set_keeps_the_last_good_one(provider, clock):
    keys = provider.keys(clock)
    asyncio.run(keys.refresh())
    provider.server.routes[provider.jwks_path] = Route(json.dumps({"keys": [], "pad": "x" * fetch.DEFAULT_MAX_BYTES}))
    clock.tick(60)
    asyncio.run(keys.refresh(force=True))
    assert verifies(keys, provider.signers["EdDSA"]) and keys.last_success == clock() - 60


def test_provider_down_keeps_keys_until_the_staleness_bound(tmp_path, signers, clock):
    provider = Provider(tmp_path, signers)
    with provider.server:
        keys = provider.keys(clock, max_staleness=600)
        asyncio.run(keys.refresh())
    clock.tick(300)
    asyncio.run(keys.refresh(force=True, rediscover=True))
    assert verifies(keys, provider.signers["RS256"]) and not keys.stale()
    clock.tick(301)
    assert keys.stale() and not verifies(keys, provider.signers["RS256"]) and len(keys) == 0


def test_run_refreshes_in_the_background_at_the_bounded_max_age(provider):
    # max-age=120 held to the upper bound of 0.2 s: about five refreshes in a second.
    keys = provider.keys(time.monotonic, refresh_bounds=(0.1, 0.2))

    async def run_for(seconds):
        await keys.refresh()
        task = asyncio.create_task(keys.run(60))
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_for(1.0))
    assert 4 <= provider.paths().count(provider.jwks_path) <= 7
    assert provider.paths().count("/.well-known/openid-configuration") >= 4
