"""Prometheus metrics of the validator: verify results and latency, the verdict cache, the JWKS.

Names follow the Prometheus naming guide; no label ever carries a token, subject or path. Under
gunicorn the values live in PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) and /metrics sums
every worker's; in tests they live in memory.
"""

import asyncio
import json
import logging
import time

from prometheus_client import Counter, Gauge, Histogram

from jwtgate.loopback import http_get
from jwtgate.metrics import exposition
from validator.tokens import REASONS

log = logging.getLogger(__name__)

RESULTS = frozenset({"allowed", *REASONS})

VERIFY_REQUESTS = Counter(
    "validator_verify_requests_total", "Answers of /verify: allowed, or the reason of the denial.", ["result"])
VERIFY_DURATION = Histogram(
    "validator_verify_duration_seconds", "Time to answer /verify, in seconds.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
CACHE_HITS = Counter("validator_cache_hits_total", "Verdict cache lookups that found a valid verdict.")
CACHE_MISSES = Counter("validator_cache_misses_total", "Verdict cache lookups that found nothing.")
CACHE_ENTRIES = Gauge("validator_cache_entries", "Verdicts cached, summed over live workers.",
                      multiprocess_mode="livesum")
JWKS_AGE = Gauge("validator_jwks_age_seconds",
                 "Seconds since a worker last loaded the JWKS; the oldest live worker's.",
                 multiprocess_mode="livemax")
JWKS_FETCH_FAILURES = Counter("validator_jwks_fetch_failures_total",
                              "JWKS fetches that failed (unreachable, not 200, not a key set).")
JWKS_KEYS = Gauge("validator_jwks_keys", "Verification keys held; the fewest of any live worker.",
                  multiprocess_mode="livemin")

for _result in RESULTS:
    # Every series exists from the start, so a rate() over a result never seen yet is 0, not absent.
    VERIFY_REQUESTS.labels(result=_result)


class CountedCache:
    """A verdict cache that counts its hits and misses; everything else is the wrapped cache's."""

    def __init__(self, cache):
        self._cache = cache

    def get(self, digest):
        identity = self._cache.get(digest)
        (CACHE_MISSES if identity is None else CACHE_HITS).inc()
        return identity

    def put(self, digest, identity):
        self._cache.put(digest, identity)

    def __len__(self):
        return len(self._cache)


def _is_key_set(body):
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("keys"), list)


class JwksFetchObserver:
    """Wraps JwksSource's fetch: counts failed fetches and remembers when a key set last arrived."""

    def __init__(self, fetch=http_get, clock=time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self.loaded_at = None

    def __call__(self, url, *, unix_socket=None, timeout=None):
        try:
            status, body = self._fetch(url, unix_socket=unix_socket, timeout=timeout)
        except Exception:
            JWKS_FETCH_FAILURES.inc()
            raise
        if status == 200 and _is_key_set(body):
            self.loaded_at = self._clock()
        else:
            JWKS_FETCH_FAILURES.inc()
        return status, body

    def age(self):
        """Seconds since the last good fetch, or None before the first."""
        return None if self.loaded_at is None else self._clock() - self.loaded_at


# One per worker process, like the metrics: validator.app hands it to JwksSource as its fetch.
jwks_fetch = JwksFetchObserver()


class VerifyMetrics:
    """Falcon ASGI middleware: the result and latency of every /verify; cache and JWKS gauges."""

    def __init__(self, cache, keys, *, jwks=jwks_fetch, interval=5.0, timer=time.perf_counter):
        self._cache = cache
        self._keys = keys
        self._jwks = jwks
        self._interval = interval
        self._timer = timer
        self._task = None

    def update_gauges(self):
        CACHE_ENTRIES.set(len(self._cache))
        JWKS_KEYS.set(len(self._keys))
        age = self._jwks.age()
        if age is not None:
            JWKS_AGE.set(age)

    async def _refresh_gauges(self):
        while True:
            try:
                self.update_gauges()
            except Exception:
                log.exception("metrics gauges not updated")
            await asyncio.sleep(self._interval)

    async def process_startup(self, scope, event):
        self._task = asyncio.create_task(self._refresh_gauges())

    async def process_shutdown(self, scope, event):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def process_request(self, req, resp):
        req.context.verify_started = self._timer()

    async def process_response(self, req, resp, resource, req_succeeded):
        if req.path != "/verify":
            return
        started = getattr(req.context, "verify_started", None)
        if started is not None:
            VERIFY_DURATION.observe(self._timer() - started)
        # /verify answers 200 or 401 with X-Auth-Error naming the reason (from REASONS).
        if resp.status_code == 200:
            result = "allowed"
        else:
            result = resp.get_header("X-Auth-Error")
            result = result if result in RESULTS else "internal_error"
        VERIFY_REQUESTS.labels(result=result).inc()


class Metrics:
    """GET /metrics: every worker's metrics (reached only through Nginx's internal metrics listener)."""

    async def on_get(self, req, resp):
        content_type, body = await asyncio.to_thread(exposition, req.get_header("Accept"))
        resp.content_type = content_type
        resp.data = body
        resp.set_header("Cache-Control", "no-store")
