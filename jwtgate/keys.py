"""The keys we verify with: a provider's JWKS (at a URL, or found by discovery), or one shared HS256 secret."""

import asyncio
import base64
import json
import logging
import re
import time
from dataclasses import dataclass

from jose import jwk

from jwtgate import fetch as fetching
from jwtgate.algorithms import EC_ALGORITHMS, OKP_ALGORITHMS, RSA_ALGORITHMS, construct
from jwtgate.discovery import OPENID, discover
from jwtgate.fetch import describe

log = logging.getLogger(__name__)

_KID = re.compile(r"[\x21-\x7e]{1,128}")
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class VerificationKey:
    """A key built once, bound to the single algorithm it may verify."""

    kid: str
    alg: str
    key: object
    # The published JWK as canonical JSON: other key material under the same kid is another key.
    published: str = ""


def _rsa_bits(modulus):
    padded = modulus + "=" * (-len(modulus) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(padded), "big").bit_length()


def key_from_jwk(member, default_alg=None):
    """Build a VerificationKey from one JWKS member; raise ValueError saying why it is unusable.

    An RSA key without `alg` verifies `default_alg`, RS256 unless given: RS256 and PS256 keys look
    the same, so a provider that publishes RSA keys without `alg` and signs PS* needs its algorithm
    configured. `x5c`, `x5t` and `x5t#S256` members are tolerated and never used.
    """
    if not isinstance(member, dict):
        raise ValueError("member is not an object")
    kid = member.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise ValueError("missing or invalid kid")
    if member.keys() & _PRIVATE_MEMBERS:
        # Symmetric keys and private parts never belong in a published key set.
        raise ValueError(f"key {kid} carries private or symmetric material")
    if member.get("use", "sig") != "sig":
        raise ValueError(f"key {kid} is not a signature key")
    kty, alg = member.get("kty"), member.get("alg")
    if kty == "RSA":
        alg = alg or default_alg or "RS256"
        if alg not in RSA_ALGORITHMS:
            raise ValueError(f"key {kid} has unsupported alg")
        if not isinstance(member.get("n"), str) or _rsa_bits(member["n"]) < _MIN_RSA_BITS:
            raise ValueError(f"key {kid} is shorter than {_MIN_RSA_BITS} bits")
    elif kty in ("EC", "OKP"):
        # The curve decides the algorithm (RFC 7518 section 3.4, RFC 8037 section 3.1).
        expected = (EC_ALGORITHMS if kty == "EC" else OKP_ALGORITHMS).get(member.get("crv"))
        if expected is None or alg not in (None, expected):
            raise ValueError(f"key {kid} has unsupported curve or alg")
        alg = expected
    else:
        raise ValueError(f"key {kid} has unsupported kty")
    return VerificationKey(kid=kid, alg=alg, key=construct(member, alg),
                           published=json.dumps(member, sort_keys=True, separators=(",", ":")))


def keys_from_jwks(document, default_alg=None):
    """Parse a JWKS document; return ({kid: VerificationKey}, [problem, ...])."""
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        return {}, ["document has no keys array"]
    keys, problems = {}, []
    for member in members:
        try:
            key = key_from_jwk(member, default_alg)
        except Exception as error:
            problems.append(str(error) if isinstance(error, ValueError) else type(error).__name__)
            continue
        if key.kid in keys:
            problems.append(f"duplicate kid {key.kid}")
            continue
        keys[key.kid] = key
    return keys, problems


class StaticKeys:
    """One HS256 shared secret: nothing to fetch, nothing to mix with public keys."""

    def __init__(self, secret, kid=""):
        self._keys = {kid: VerificationKey(kid=kid, alg="HS256", key=jwk.construct(secret, "HS256"))}

    def get(self, kid):
        return self._keys.get(kid)

    def __len__(self):
        return len(self._keys)

    def stale(self):
        return False

    def age(self):
        """None: a secret from the configuration was never fetched."""
        return None

    def on_retire(self, callback):
        """Nothing to watch: the one secret never leaves."""

    async def refresh(self):
        return None

    async def run(self, interval):
        return None


class JwksSource:
    """A provider's public keys: from its JWKS URL, or from the jwks_uri its issuer's metadata names.

    Refetched on an unknown kid at most once per `min_interval` (concurrent callers share one fetch),
    and by run() when due: after the JWKS answer's Cache-Control max-age held within `refresh_bounds`
    (when given), else run()'s interval; sooner after a failure. Discovery is refreshed the same way.
    A failed fetch keeps the last good key set: for ever, or for `max_staleness` seconds when given,
    after which get() finds no key (fail closed) until a fetch succeeds. `fetch(url, *, unix_socket,
    timeout)` returns a jwtgate.fetch.Response: bind a CA bundle, `allow_http` and a size bound with
    functools.partial. Not thread-safe: one instance per event loop.
    """

    def __init__(self, url=None, *, issuer=None, discovery=OPENID, unix_socket=None, timeout=2.0, min_interval=5.0,
                 refresh_bounds=None, max_staleness=None, default_alg=None, allow_http=False, clock=time.monotonic,
                 fetch=fetching.get):
        if (url is None) == (issuer is None):
            raise ValueError("JwksSource needs a JWKS URL or an issuer to discover it from (one, not both)")
        self._url = url
        self._issuer = issuer
        self._discovery = discovery
        self._unix_socket = unix_socket
        self._timeout = timeout
        self._min_interval = min_interval
        self._refresh_bounds = refresh_bounds
        self._max_staleness = max_staleness
        self._default_alg = default_alg
        self._allow_http = allow_http
        self._clock = clock
        self._fetch = fetch
        self._keys = {}
        self._jwks_max_age = None
        self._failures = 0
        self._last_attempt = None
        self._last_demand = None
        self._discovered = None
        self._discovery_max_age = None
        self._lock = asyncio.Lock()
        self._retire_callbacks = []
        self._stale_retired = False
        self.last_success = None

    @property
    def jwks_uri(self):
        """The JWKS URL in use: the one configured or the one discovery found (None before it has)."""
        return self._url

    def get(self, kid):
        key = self._keys.get(kid)
        if key is not None and self._max_staleness is not None and self.stale():
            return None
        return key

    def __len__(self):
        return 0 if self._max_staleness is not None and self.stale() else len(self._keys)

    def stale(self):
        """True before the first key set arrives, and when the last good one is older than max_staleness."""
        if self.last_success is None:
            return True
        return self._max_staleness is not None and self.age() > self._max_staleness

    def age(self):
        """Seconds since the last good key set arrived, or None before the first."""
        return None if self.last_success is None else self._clock() - self.last_success

    def on_retire(self, callback):
        """Call callback() whenever a refresh drops a key, or finds other material under its kid."""
        self._retire_callbacks.append(callback)

    async def refresh(self, force=False, rediscover=False):
        """Refetch unless a fetch began within min_interval; concurrent callers share one fetch.

        Discovery runs first when asked to, and whenever no jwks_uri is known yet.
        """
        async with self._lock:
            now = self._clock()
            if not force:
                # Only demands (an unknown kid) count against the rate limit: a background refetch a moment
                # ago may have come before the provider's rotation, and must not make its new kid wait.
                if self._last_demand is not None and now - self._last_demand < self._min_interval:
                    return
                self._last_demand = now
            self._last_attempt = now
            if self._issuer is not None and (rediscover or self._url is None):
                metadata = await asyncio.to_thread(self._discover)
                self._discovered = now
                if metadata is not None:
                    self._url, self._discovery_max_age = metadata.jwks_uri, metadata.max_age
            loaded = None if self._url is None else await asyncio.to_thread(self._load, self._url)
            if loaded is None:
                self._failures += 1
                if self._max_staleness is not None and self.stale() and not self._stale_retired:
                    # Past the staleness bound the keys are as good as gone: what they verified goes too.
                    self._stale_retired = True
                    self._retire("the key set is stale")
                return
            self._stale_retired = False
            keys, self._jwks_max_age = loaded
            retired = [kid for kid, held in self._keys.items()
                       if kid not in keys or keys[kid].published != held.published]
            self._keys = keys
            self._failures = 0
            self.last_success = self._clock()
            if retired:
                # A key pulled from the set (retired, or compromised) must stop validating at once:
                # the callbacks drop what it verified (the verdict cache), in the same step as the swap.
                self._retire(" ".join(retired)[:200])

    def _retire(self, what):
        log.info("jwks keys retired", extra={"url": describe(self._url or self._issuer), "kid": what})
        for callback in self._retire_callbacks:
            callback()

    def refresh_delay(self, interval):
        """Seconds until run() refetches: the key set's lifetime from its last fetch, or sooner for discovery;
        after failures, min_interval doubling each time, up to that lifetime."""
        if self._last_attempt is None:
            return 0.0
        period = self._period(self._jwks_max_age, interval)
        if self._failures:
            period = min(period, self._min_interval * 2 ** min(self._failures - 1, 16))
        due = self._last_attempt + period
        if self._discovered is not None:
            due = min(due, self._discovered + self._period(self._discovery_max_age, interval))
        return max(0.0, due - self._clock())

    def discovery_due(self, interval):
        """True when run() should fetch the metadata again before the JWKS (never without an issuer)."""
        if self._issuer is None:
            return False
        return self._discovered is None or \
            self._clock() >= self._discovered + self._period(self._discovery_max_age, interval)

    async def run(self, interval):
        """Refetch whenever refresh_delay() says, so new keys are known before tokens use them and removed ones go."""
        while True:
            await asyncio.sleep(self.refresh_delay(interval))
            await self.refresh(force=True, rediscover=self.discovery_due(interval))

    def _period(self, max_age, interval):
        if max_age is None or self._refresh_bounds is None:
            return interval
        low, high = self._refresh_bounds
        return min(max(max_age, low), high)

    def _get(self, url):
        return self._fetch(url, unix_socket=self._unix_socket, timeout=self._timeout)

    def _discover(self):
        try:
            metadata = discover(self._issuer, kind=self._discovery, fetch=self._get, allow_http=self._allow_http)
        except (OSError, ValueError) as error:
            # Keep the jwks_uri found before, if any: discovery is only where the keys are.
            log.warning("discovery failed", extra={"url": describe(self._issuer), "error": str(error)[:200]})
            return None
        if metadata.jwks_uri != self._url:
            log.info("discovery found jwks_uri", extra={"url": describe(metadata.jwks_uri)})
        return metadata

    def _load(self, url):
        try:
            response = self._get(url)
            if response.status != 200:
                raise OSError(f"status {response.status}")
            document = json.loads(response.body)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise ValueError("not a key set")
        except (OSError, ValueError) as error:
            # Keep the last good keys: a provider outage (or an error page) must not log everyone out.
            log.warning("jwks fetch failed", extra={"url": describe(url), "error": str(error)[:200]})
            return None
        keys, problems = keys_from_jwks(document, self._default_alg)
        for problem in problems:
            log.warning("jwks key skipped", extra={"url": describe(url), "error": problem})
        log.info("jwks loaded", extra={"url": describe(url), "keys": len(keys)})
        return keys, response.max_age()
