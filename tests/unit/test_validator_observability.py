"""The validator's metrics and JSON depth limit in-process, and the request id in every log line."""

import asyncio
import json
import logging

import falcon
import falcon.testing
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from jwtgate import request_id
from jwtgate.fetch import Response
from jwtgate.logs import JsonFormatter
from tests.minting import RsaSigner, b64, claims, header, rs256
from validator import metrics
from validator.app import create_app
from validator.config import Settings
from validator.providers import TrustedProviders
from jwtgate.claims import Policy
from jwtgate.keys import JwksSource, StaticKeys
from jwtgate.jose import MAX_JSON_DEPTH, exceeds_depth


@pytest.fixture(scope="module")
def signer():
    return RsaSigner(kid="key-1")


@pytest.fixture
def client(signer, clock):
    document = json.dumps({"keys": [signer.jwk]}).encode()
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, document), clock=clock)
    asyncio.run(keys.refresh())
    return falcon.testing.TestClient(create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate"),
                                                keys=keys, clock=clock))


def verify(client, token):
    return client.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- JSON depth -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, depth", [
    (b"{}", 1), (b'{"a": [1, {"b": []}]}', 4), (b"[" * 10 + b"]" * 10, 10), (b"[" * 11, 11),
    (b'{"a": "[[[[[[[[[[[[[[[[[[[[[["}', 1), (b'{"a": "\\"[[[[[[[[[[[[[[[["}', 1),
    (b'{"a": "\\\\", "b": ' + b"[" * 10 + b"]" * 10 + b"}", 11),
])
def test_depth_counts_brackets_outside_strings(text, depth):
    assert exceeds_depth(text, depth) is False
    assert exceeds_depth(text, depth - 1) is True


def test_a_deep_token_is_malformed_before_its_signature_is_checked(client, signer, clock):
    nested = json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    result = verify(client, rs256(signer, claims(clock(), deep=nested)))
    assert result.status_code == 401
    assert result.headers["X-Auth-Error"] == "malformed"
    assert result.headers["WWW-Authenticate"] == (
        'Bearer realm="jwtgate", error="invalid_token", error_description="Malformed token"')
    # One level less is fine; so is a deep header that an attacker made up (refused as malformed too).
    assert verify(client, rs256(signer, claims(clock(), deep=nested[0]))).status_code == 200
    forged = f"{b64(json.dumps(header(signer)))}.{b64('[' * 50 + ']' * 50)}.c2ln"
    assert verify(client, forged).headers["X-Auth-Error"] == "malformed"


# --- metrics --------------------------------------------------------------------------------


def test_verify_results_latency_and_cache_are_counted(client, signer, clock):
    token = rs256(signer, claims(clock()))
    before = {name: sample(name) for name in ("validator_cache_hits_total", "validator_cache_misses_total",
                                               "validator_verify_duration_seconds_count")}
    allowed, malformed = (sample("validator_verify_requests_total", result=r) for r in ("allowed", "malformed"))
    for _ in range(3):
        assert verify(client, token).status_code == 200
    assert verify(client, "x.y.z").status_code == 401
    client.simulate_get("/healthz")
    # Counted per worker, added to the Prometheus values every second and by a scrape.
    client.simulate_get("/metrics")
    assert sample("validator_verify_requests_total", result="allowed") == allowed + 3
    assert sample("validator_verify_requests_total", result="malformed") == malformed + 1
    assert sample("validator_verify_duration_seconds_count") == before["validator_verify_duration_seconds_count"] + 4
    assert sample("validator_cache_hits_total") == before["validator_cache_hits_total"] + 2
    assert sample("validator_cache_misses_total") == before["validator_cache_misses_total"] + 2


def test_flushed_latencies_are_what_observe_would_have_recorded():
    """VerifyStats writes Histogram internals: the same durations through observe() must read the same."""
    registry = CollectorRegistry()
    batched = Histogram("batched_seconds", "d", buckets=metrics.DURATION_BUCKETS, registry=registry)
    direct = Histogram("direct_seconds", "d", buckets=metrics.DURATION_BUCKETS, registry=registry)
    requests = Counter("answers_total", "r", ["result"], registry=registry)
    hits, misses = Counter("hits_total", "h", registry=registry), Counter("misses_total", "m", registry=registry)
    stats = metrics.VerifyStats(requests, batched, hits, misses)
    durations = [0.0, 0.0005, 0.00051, 0.003, 0.0025, 2.5, 2.6, 99.0]
    for seconds in durations:
        stats.answered("allowed", seconds)
        direct.observe(seconds)
    stats.answered("no such reason", 0.001)
    stats.looked_up(True)
    stats.looked_up(False)
    stats.looked_up(True)
    assert registry.get_sample_value("batched_seconds_count") == 0
    stats.flush()
    direct.observe(0.001)
    for bound in (*(str(b) for b in metrics.DURATION_BUCKETS), "+Inf"):
        assert registry.get_sample_value("batched_seconds_bucket", {"le": bound}) == \
            registry.get_sample_value("direct_seconds_bucket", {"le": bound}), bound
    assert registry.get_sample_value("batched_seconds_sum") == pytest.approx(
        registry.get_sample_value("direct_seconds_sum"))
    assert registry.get_sample_value("answers_total", {"result": "allowed"}) == len(durations)
    assert registry.get_sample_value("answers_total", {"result": "internal_error"}) == 1
    assert registry.get_sample_value("hits_total") == 2 and registry.get_sample_value("misses_total") == 1
    stats.flush()
    assert registry.get_sample_value("batched_seconds_count") == len(durations) + 1


def test_metrics_endpoint_speaks_prometheus(client):
    result = client.simulate_get("/metrics")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "validator_verify_requests_total" in result.text
    # What Prometheus itself asks for first.
    openmetrics = client.simulate_get("/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_jwks_observer_counts_each_providers_failures():
    replies = iter([OSError("refused"), Response(500, {}, b"oops"), Response(200, {}, b"not json"),
                    Response(200, {}, b'{"keys": []}'), Response(200, {}, b'{"jwks_uri": "https://a/k"}'),
                    Response(503, {}, b"")])

    def fetch(url, **_):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    observer = metrics.JwksFetchObserver(fetch)
    failures = {name: sample("validator_jwks_fetch_failures_total", provider=name) for name in ("a", "b")}
    with pytest.raises(OSError):
        observer("u", provider="a")
    for _ in range(4):
        observer("u", provider="a")
    observer("u", provider="b")
    assert sample("validator_jwks_fetch_failures_total", provider="a") == failures["a"] + 3
    assert sample("validator_jwks_fetch_failures_total", provider="b") == failures["b"] + 1


class _Cache:
    def __len__(self):
        return 4


def test_gauges_report_cache_size_and_each_providers_keys_and_their_age():
    now = [1000.0]
    jwks = {"keys": [RsaSigner("k1").jwk, RsaSigner("k2").jwk]}
    fresh = JwksSource("https://a/jwks", fetch=lambda url, **_: Response(200, {}, json.dumps(jwks).encode()),
                       clock=lambda: now[0])
    down = JwksSource("https://b/jwks", fetch=lambda url, **_: Response(503, {}, b""), clock=lambda: now[0])
    asyncio.run(fresh.refresh())
    asyncio.run(down.refresh())
    now[0] += 7
    providers = TrustedProviders((name, Policy(issuer=name, audiences=("api",), accepted_typ=("at+jwt",),
                                                 leeway_seconds=0), keys)
                                 for name, keys in [("fresh", fresh), ("down", down), ("secret", StaticKeys("s"))])
    metrics.VerifyMetrics(_Cache(), providers, metrics.VerifyStats()).update_gauges()
    assert sample("validator_cache_entries") == 4
    assert sample("validator_jwks_keys", provider="fresh") == 2
    assert sample("validator_jwks_age_seconds", provider="fresh") == 7
    # A provider whose keys never came: no keys, and no age to report rather than a made-up one.
    assert sample("validator_jwks_keys", provider="down") == 0
    assert REGISTRY.get_sample_value("validator_jwks_age_seconds", {"provider": "down"}) is None
    assert sample("validator_jwks_keys", provider="secret") == 1


# --- request id -----------------------------------------------------------------------------


def _record():
    return logging.LogRecord("t", logging.INFO, __file__, 1, "event", None, None)


def test_log_lines_carry_the_current_request_id():
    formatter = JsonFormatter("svc")
    token = request_id.current.set("0123abcd")
    try:
        assert json.loads(formatter.format(_record()))["request_id"] == "0123abcd"
        record = _record()
        record.request_id = "explicit"
        assert json.loads(formatter.format(record))["request_id"] == "explicit"
    finally:
        request_id.current.reset(token)
    assert "request_id" not in json.loads(formatter.format(_record()))


@pytest.mark.parametrize("value, logged", [("4f9a0c", "4f9a0c"), ("x" * 65, None), ("a b", None),
                                           ("id\r\nforged", None), (None, None)])
def test_the_wsgi_middleware_sets_and_forgets_the_id(value, logged):
    seen = []

    class Probe:
        def on_get(self, req, resp):
            seen.append(request_id.current.get())

    app = falcon.App(middleware=[request_id.RequestIdMiddleware()])
    app.add_route("/", Probe())
    headers = {} if value is None else {"X-Request-Id": value}
    falcon.testing.TestClient(app).simulate_get("/", headers=headers)
    assert seen == [logged]
    assert request_id.current.get() is None


def test_a_deep_token_in_the_cookie_is_malformed_too(client, signer, clock):
    nested = json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    token = rs256(signer, claims(clock(), deep=nested))
    result = client.simulate_get("/verify", headers={"X-Jwtgate-Cookie-Token": token})
    assert result.status_code == 401 and result.headers["X-Auth-Error"] == "malformed"
