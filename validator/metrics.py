"""Prometheus metrics of the validator: verify results and latency, the verdict cache, the JWKS.

Names follow the Prometheus naming guide; no label ever carries a token, subject or path. Under
gunicorn the values live in PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) and /metrics sums
every worker's; in tests they live in memory. /verify counts in VerifyStats, which reaches those
values every second and before each scrape (so a scrape may miss another worker's last second).
"""

import asyncio
import bisect
import collections
import json
import logging
import math

from prometheus_client import Counter, Gauge, Histogram

from jwtgate import fetch as fetching
from jwtgate.metrics import exposition
from jwtgate.reasons import REASONS

log = logging.getLogger(__name__)

RESULTS = frozenset({"allowed", *REASONS})

VERIFY_REQUESTS = Counter(
    "validator_verify_requests_total", "Answers of /verify: allowed, or the reason of the denial.", ["result"])
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
VERIFY_DURATION = Histogram(
    "validator_verify_duration_seconds", "Time to answer /verify, in seconds.", buckets=DURATION_BUCKETS)
CACHE_HITS = Counter("validator_cache_hits_total", "Verdict cache lookups that found a valid verdict.")
CACHE_MISSES = Counter("validator_cache_misses_total", "Verdict cache lookups that found nothing.")
CACHE_ENTRIES = Gauge("validator_cache_entries", "Verdicts cached, summed over live workers.",
                      multiprocess_mode="livesum")
# Labelled by provider (names from the configuration, at most 32): one provider's outage must show
# even while another's keys arrive on time.
JWKS_AGE = Gauge("validator_jwks_age_seconds",
                 "Seconds since a provider's key set last arrived; the oldest live worker's.",
                 ["provider"], multiprocess_mode="livemax")
JWKS_FETCH_FAILURES = Counter("validator_jwks_fetch_failures_total",
                              "Key-set and discovery fetches that failed (unreachable, not 200, neither document).",
                              ["provider"])
JWKS_KEYS = Gauge("validator_jwks_keys", "A provider's verification keys in use; the fewest of any live worker.",
                  ["provider"], multiprocess_mode="livemin")

for _result in RESULTS:
    # Every series exists from the start, so a rate() over a result never seen yet is 0, not absent.
    VERIFY_REQUESTS.labels(result=_result)


class VerifyStats:
    """One worker's /verify answers, latencies and verdict-cache lookups, kept in plain numbers until flush().

    In multiprocess mode every Prometheus update takes a lock and writes a shared file, four of them
    per /verify. Not thread-safe: /verify and flush() both run
    on the worker's event loop.
    """

    _BOUNDS = (*DURATION_BUCKETS, math.inf)

    def __init__(self, requests=VERIFY_REQUESTS, duration=VERIFY_DURATION, hits=CACHE_HITS, misses=CACHE_MISSES):
        self._metrics = requests, duration, hits, misses
        self._reset()

    def _reset(self):
        self._results = collections.Counter()
        self._buckets = [0] * len(self._BOUNDS)
        self._seconds = 0.0
        self._lookups = [0, 0]  # misses, hits

    def answered(self, result, seconds):
        """Count one /verify answer: "allowed" or the reason of the denial (a key of REASONS)."""
        self._results[result if result in RESULTS else "internal_error"] += 1
        # Prometheus' bucket for a value is the first bound at or above it.
        self._buckets[bisect.bisect_left(self._BOUNDS, seconds)] += 1
        self._seconds += seconds

    def looked_up(self, hit):
        self._lookups[hit] += 1

    def flush(self):
        """Add what was counted since the last flush to the Prometheus metrics."""
        requests, duration, hits, misses = self._metrics
        results, buckets, seconds, lookups = self._results, self._buckets, self._seconds, self._lookups
        self._reset()
        for result, count in results.items():
            requests.labels(result=result).inc(count)
        # Histogram has no public way to add many observations at once; these are the values
        # observe() updates (tests/unit/test_validator_observability.py checks they still are).
        for value, count in zip(duration._buckets, buckets):
            if count:
                value.inc(count)
        if any(buckets):
            duration._sum.inc(seconds)
        if lookups[1]:
            hits.inc(lookups[1])
        if lookups[0]:
            misses.inc(lookups[0])


class CountedCache:
    """A verdict cache that counts its hits and misses; everything else is the wrapped cache's."""

    def __init__(self, cache, stats):
        self._cache = cache
        self._stats = stats
        # The wrapped cache's own methods, not wrappers: a verdict-cache miss calls them five times,
        # and with many distinct tokens nearly every check is a miss.
        self.put = cache.put
        self.share = cache.share

    def get(self, digest):
        identity = self._cache.get(digest)
        self._stats.looked_up(identity is not None)
        return identity

    def __len__(self):
        return len(self._cache)


def _document_kind(body):
    """"keys" for a key set, "metadata" for discovery metadata naming a jwks_uri, else None."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("keys"), list):
        return "keys"
    return "metadata" if isinstance(document.get("jwks_uri"), str) else None


class JwksFetchObserver:
    """Wraps every provider's fetch (discovery and JWKS) and counts the failed ones by provider.
    `options` (a provider's CA bundle, whether plain http is allowed) go to the fetch."""

    def __init__(self, fetch=fetching.get):
        self._fetch = fetch

    def __call__(self, url, *, provider, unix_socket=None, timeout=None, **options):
        try:
            response = self._fetch(url, unix_socket=unix_socket, timeout=timeout, **options)
        except Exception:
            JWKS_FETCH_FAILURES.labels(provider=provider).inc()
            raise
        if response.status != 200 or _document_kind(response.body) is None:
            JWKS_FETCH_FAILURES.labels(provider=provider).inc()
        return response


# One per worker process, like the metrics: validator.app hands it to JwksSource as its fetch.
jwks_fetch = JwksFetchObserver()


class VerifyMetrics:
    """Falcon ASGI middleware, at start-up and shutdown only: every second, flush the /verify counts and
    refresh the cache and JWKS gauges."""

    def __init__(self, cache, providers, stats, *, interval=1.0):
        self._cache = cache
        self._providers = providers
        self._stats = stats
        self._interval = interval
        self._task = None

    def update_gauges(self):
        CACHE_ENTRIES.set(len(self._cache))
        for name, keys in self._providers.key_sets():
            JWKS_KEYS.labels(provider=name).set(len(keys))
            age = keys.age()
            if age is not None:
                JWKS_AGE.labels(provider=name).set(age)

    async def _refresh(self):
        while True:
            try:
                self._stats.flush()
                self.update_gauges()
            except Exception:
                log.exception("metrics not updated")
            await asyncio.sleep(self._interval)

    async def process_startup(self, scope, event):
        self._task = asyncio.create_task(self._refresh())

    async def process_shutdown(self, scope, event):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._stats.flush()


class Metrics:
    """GET /metrics: every worker's metrics (reached only through Nginx's internal metrics listener)."""

    def __init__(self, stats):
        self._stats = stats

    async def on_get(self, req, resp):
        # This worker's own counts are exact; the others' are at most a second old.
        self._stats.flush()
        content_type, body = await asyncio.to_thread(exposition, req.get_header("Accept"))
        resp.content_type = content_type
        resp.data = body
        resp.set_header("Cache-Control", "no-store")
