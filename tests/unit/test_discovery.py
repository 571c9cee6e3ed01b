"""Discovery documents, Cache-Control and JwksSource's schedule, in-process with a fake clock (no sockets)."""

import asyncio
import json

import pytest

from jwtgate import discovery
from jwtgate.discovery import DiscoveryError, metadata_url, parse_metadata
from jwtgate.fetch import FetchError, Response, check_url
from tests.fakes import FakeClock
from tests.minting import RsaSigner
from jwtgate.keys import JwksSource

ISSUER = "https://idp.example/realms/acme"
JWKS_URI = "https://keys.idp.example/realms/acme/certs"


@pytest.mark.parametrize("issuer, kind, url", [
    ("https://idp.example", discovery.OPENID, "https://idp.example/.well-known/openid-configuration"),
    ("https://idp.example/", discovery.OPENID, "https://idp.example/.well-known/openid-configuration"),
    (ISSUER, discovery.OPENID, f"{ISSUER}/.well-known/openid-configuration"),
    (ISSUER + "/", discovery.OPENID, f"{ISSUER}/.well-known/openid-configuration"),
    ("https://idp.example", discovery.OAUTH, "https://idp.example/.well-known/oauth-authorization-server"),
    ("https://idp.example/", discovery.OAUTH, "https://idp.example/.well-known/oauth-authorization-server"),
    # RFC 8414 section 3.1's own example, and a terminating "/" removed before insertion.
    ("https://example.com/issuer1", discovery.OAUTH, "https://example.com/.well-known/oauth-authorization-server/issuer1"),
    (ISSUER + "/", discovery.OAUTH, "https://idp.example/.well-known/oauth-authorization-server/realms/acme"),
    ("http://127.0.0.1:8080", discovery.OAUTH, "http://127.0.0.1:8080/.well-known/oauth-authorization-server"),
])
def test_metadata_url(issuer, kind, url):
    assert metadata_url(issuer, kind) == url


def test_an_unknown_metadata_kind_is_refused():
    with pytest.raises(DiscoveryError, match="unknown metadata kind"):
        metadata_url(ISSUER, "webfinger")


def document(**overrides):
    base = {"issuer": ISSUER, "jwks_uri": JWKS_URI, "token_endpoint": f"{ISSUER}/token"}
    base.update(overrides)
    return json.dumps({name: value for name, value in base.items() if value is not None}).encode()


def test_a_good_document_gives_its_jwks_uri():
    metadata = parse_metadata(document(), ISSUER, max_age=60)
    assert (metadata.issuer, metadata.jwks_uri, metadata.max_age) == (ISSUER, JWKS_URI, 60)
    assert metadata.document["token_endpoint"] == f"{ISSUER}/token"


@pytest.mark.parametrize("body, message", [
    (b"<html>", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'["issuer"]', "not a JSON object"),
    (b'{"issuer": "%s", "issuer": "https://evil.example", "jwks_uri": "%s"}' % (ISSUER.encode(), JWKS_URI.encode()),
     "duplicate member"),
    (document(issuer=None), "names issuer NoneType"),
    (document(issuer=ISSUER + "/"), "not https://idp.example/realms/acme"),
    (document(issuer=ISSUER.upper()), "names issuer"),
    (document(issuer="https://evil.example/realms/acme"), "names issuer https://evil.example/realms/acme"),
    (document(issuer=7), "names issuer int"),
    (document(jwks_uri=None), "no jwks_uri"),
    (document(jwks_uri=["https://idp.example/certs"]), "no jwks_uri"),
    (document(jwks_uri="http://idp.example/certs"), "plain http:// is only allowed to loopback"),
    (document(jwks_uri="https://user:s3cret@idp.example/certs"), "credentials"),
    (document(jwks_uri="/certs"), "not an absolute https:// URL"),
    (document(jwks_uri="file:///etc/passwd"), "not an absolute https:// URL"),
])
def test_a_document_that_is_malformed_or_mismatched_is_refused_saying_why(body, message):
    with pytest.raises(DiscoveryError, match=message) as raised:
        parse_metadata(body, ISSUER)
    assert "s3cret" not in str(raised.value)


def test_loopback_http_jwks_uri_is_accepted_and_elsewhere_only_when_allowed():
    issuer = "http://127.0.0.1:8080"
    assert parse_metadata(document(issuer=issuer, jwks_uri="http://localhost:8080/jwks"), issuer).jwks_uri
    with pytest.raises(DiscoveryError):
        parse_metadata(document(jwks_uri="http://idp.example/certs"), ISSUER)
    assert parse_metadata(document(jwks_uri="http://idp.example/certs"), ISSUER, allow_http=True).jwks_uri


@pytest.mark.parametrize("issuer", ["http://idp.example", "https://idp.example?tenant=1", "idp.example",
                                    "https://idp.example#x"])
def test_an_issuer_that_cannot_be_one_is_refused_before_any_fetch(issuer):
    def fetch(url):
        raise AssertionError("fetched")

    with pytest.raises(DiscoveryError, match="issuer"):
        discovery.discover(issuer, fetch=fetch)


def test_discover_checks_status_and_names_the_url():
    answers = {f"{ISSUER}/.well-known/openid-configuration": Response(404, {}, b"")}
    with pytest.raises(DiscoveryError, match="openid-configuration: status 404"):
        discovery.discover(ISSUER, fetch=answers.__getitem__)
    answers[f"{ISSUER}/.well-known/openid-configuration"] = Response(200, {"cache-control": "max-age=900"}, document())
    assert discovery.discover(ISSUER, fetch=answers.__getitem__).max_age == 900


@pytest.mark.parametrize("value, max_age", [
    ("public, max-age=300", 300), ('max-age="60"', 60), ("MAX-AGE=5", 5), ("max-age=300, must-revalidate", 300),
    ("no-cache", 0), ("no-store, max-age=300", 0), ("private, no-cache=set-cookie", 0), ("s-maxage=100", None),
    ("public", None), ("", None), ("max-age=-1", None), ("x-max-age=100", None),
])
def test_cache_control_max_age(value, max_age):
    headers = {"cache-control": value} if value else {}
    assert Response(200, headers, b"").max_age() == max_age


def test_check_url_accepts_https_and_loopback_http():
    for url in ("https://idp.example/certs", "http://localhost:8080/certs", "http://127.3.4.5/certs",
                "http://[::1]:80/certs", "http://LOCALHOST/certs"):
        check_url(url)
    with pytest.raises(FetchError):
        check_url("http://[::2]/certs")


class FakeProvider:
    """A provider's metadata and JWKS to JwksSource's fetch hook: documents by URL, failures on demand, counted."""

    def __init__(self, signer, jwks_max_age=None, discovery_max_age=None):
        self.signer = signer
        self.fetched = []
        self.down = False
        self.discovery_down = False
        self.jwks_answer = None
        self.jwks_uri = JWKS_URI
        self.jwks_max_age = jwks_max_age
        self.discovery_max_age = discovery_max_age

    def __call__(self, url, *, unix_socket=None, timeout=None):
        self.fetched.append(url)
        if self.down:
            raise FetchError(f"{url}: Connection refused")
        if url == metadata_url(ISSUER):
            if self.discovery_down:
                raise FetchError(f"{url}: Connection refused")
            return Response(200, self._cache(self.discovery_max_age), document(jwks_uri=self.jwks_uri))
        if url == self.jwks_uri:
            if self.jwks_answer is not None:
                return self.jwks_answer
            return Response(200, self._cache(self.jwks_max_age), json.dumps(self.signer.jwks()).encode())
        return Response(404, {}, b"")

    @staticmethod
    def _cache(max_age):
        return {} if max_age is None else {"cache-control": f"public, max-age={max_age}"}


@pytest.fixture(scope="module")
def signer():
    return RsaSigner(kid="k1")


@pytest.fixture
def clock():
    return FakeClock()


def test_keys_are_found_through_discovery(signer, clock):
    provider = FakeProvider(signer)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock)
    assert keys.stale() and keys.last_success is None and keys.jwks_uri is None
    asyncio.run(keys.refresh())
    assert provider.fetched == [metadata_url(ISSUER), JWKS_URI]
    assert keys.get("k1").alg == "RS256" and keys.jwks_uri == JWKS_URI
    assert not keys.stale() and keys.last_success == clock()


def test_a_url_or_an_issuer_is_required_not_both():
    with pytest.raises(ValueError):
        JwksSource()
    with pytest.raises(ValueError):
        JwksSource(JWKS_URI, issuer=ISSUER)


@pytest.mark.parametrize("max_age, bounds, delay", [
    (300, (60, 3600), 300), (5, (60, 3600), 60), (0, (60, 3600), 60), (10**9, (60, 3600), 3600),
    (None, (60, 3600), 120), (300, None, 120),
])
def test_background_refresh_follows_max_age_within_bounds(signer, clock, max_age, bounds, delay):
    provider = FakeProvider(signer, jwks_max_age=max_age, discovery_max_age=max_age)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock, refresh_bounds=bounds)
    assert keys.refresh_delay(120) == 0
    asyncio.run(keys.refresh())
    assert keys.refresh_delay(120) == delay
    clock.tick(delay - 1)
    assert keys.refresh_delay(120) == 1


def test_discovery_is_refreshed_on_its_own_lifetime_and_a_new_jwks_uri_followed(signer, clock):
    provider = FakeProvider(signer, jwks_max_age=3600, discovery_max_age=600)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock, refresh_bounds=(60, 86_400))
    asyncio.run(keys.refresh())
    assert keys.refresh_delay(120) == 600
    provider.jwks_uri = "https://keys.idp.example/v2/certs"
    clock.tick(600)
    assert keys.discovery_due(120)
    asyncio.run(keys.refresh(force=True, rediscover=keys.discovery_due(120)))
    assert provider.fetched[-2:] == [metadata_url(ISSUER), "https://keys.idp.example/v2/certs"]
    assert keys.jwks_uri == "https://keys.idp.example/v2/certs" and keys.get("k1") is not None


def test_an_unknown_kid_refetches_the_jwks_without_rediscovery_rate_limited(signer, clock):
    provider = FakeProvider(signer)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock, min_interval=5)
    asyncio.run(keys.refresh())

    async def flood():
        await asyncio.gather(*(keys.refresh() for _ in range(20)))

    clock.tick(5)
    asyncio.run(flood())
    asyncio.run(flood())
    assert provider.fetched == [metadata_url(ISSUER), JWKS_URI, JWKS_URI]


def test_the_last_good_keys_are_kept_while_the_provider_is_down_with_backoff(signer, clock):
    provider = FakeProvider(signer, jwks_max_age=300)
    keys = JwksSource(JWKS_URI, fetch=provider, clock=clock, min_interval=5, refresh_bounds=(60, 3600))
    asyncio.run(keys.refresh())
    loaded = keys.last_success
    provider.down = True
    delays = []
    for _ in range(8):
        clock.tick(keys.refresh_delay(120))
        asyncio.run(keys.refresh(force=True, rediscover=keys.discovery_due(120)))
        delays.append(keys.refresh_delay(120))
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert keys.get("k1") is not None and len(keys) == 1
    assert keys.last_success == loaded and not keys.stale()
    provider.down = False
    asyncio.run(keys.refresh(force=True))
    assert keys.last_success == clock() and keys.refresh_delay(120) == 300


def test_past_max_staleness_the_kept_keys_stop_verifying_until_a_fetch_succeeds(signer, clock):
    provider = FakeProvider(signer)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock, max_staleness=3600)
    asyncio.run(keys.refresh())
    provider.down = True
    clock.tick(3600)
    asyncio.run(keys.refresh(force=True))
    assert keys.get("k1") is not None and not keys.stale()
    clock.tick(1)
    assert keys.stale() and keys.get("k1") is None and len(keys) == 0
    provider.down = False
    asyncio.run(keys.refresh(force=True))
    assert not keys.stale() and keys.get("k1") is not None


def test_a_provider_that_never_answered_is_stale_and_holds_no_keys(signer, clock):
    provider = FakeProvider(signer)
    provider.down = True
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock)
    asyncio.run(keys.refresh())
    assert keys.stale() and len(keys) == 0 and keys.get("k1") is None and keys.jwks_uri is None
    assert keys.refresh_delay(120) == 5


@pytest.mark.parametrize("answer", [Response(500, {}, b"oops"), Response(200, {}, b"<html>"),
                                    Response(200, {}, b'{"keys": {}}'), Response(200, {}, b"[]")])
def test_an_error_page_keeps_the_last_good_keys(signer, clock, answer):
    provider = FakeProvider(signer)
    keys = JwksSource(JWKS_URI, fetch=provider, clock=clock)
    asyncio.run(keys.refresh())
    provider.jwks_answer = answer
    asyncio.run(keys.refresh(force=True))
    assert keys.get("k1") is not None and keys.last_success == clock()
    clock.tick(1)
    assert keys.refresh_delay(120) == 4


def test_discovery_down_keeps_the_jwks_uri_found_before(signer, clock):
    provider = FakeProvider(signer)
    keys = JwksSource(issuer=ISSUER, fetch=provider, clock=clock)
    asyncio.run(keys.refresh())
    provider.discovery_down = True
    clock.tick(120)
    asyncio.run(keys.refresh(force=True, rediscover=True))
    assert provider.fetched[-2:] == [metadata_url(ISSUER), JWKS_URI]
    assert keys.jwks_uri == JWKS_URI and keys.last_success == clock()


def test_rsa_keys_without_alg_take_the_default_alg(clock):
    signer = RsaSigner(kid="k1")
    member = {name: value for name, value in signer.jwk.items() if name != "alg"}
    fetch = lambda url, **_: Response(200, {}, json.dumps({"keys": [member]}).encode())  # noqa: E731
    keys = JwksSource(JWKS_URI, fetch=fetch, clock=clock, default_alg="PS256")
    asyncio.run(keys.refresh())
    assert keys.get("k1").alg == "PS256"
