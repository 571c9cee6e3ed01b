"""The keys we verify with: a JWKS fetched from the auth API, or one shared HS256 secret."""

import asyncio
import base64
import json
import logging
import re
import time
from dataclasses import dataclass

from jose import jwk

from jwtgate.loopback import http_get

log = logging.getLogger(__name__)

_KID = re.compile(r"[\x21-\x7e]{1,128}")
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512"})
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
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


def key_from_jwk(member):
    """Build a VerificationKey from one JWKS member; raise ValueError saying why it is unusable."""
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
        alg = alg or "RS256"
        if alg not in _RSA_ALGS:
            raise ValueError(f"key {kid} has unsupported alg")
        if not isinstance(member.get("n"), str) or _rsa_bits(member["n"]) < _MIN_RSA_BITS:
            raise ValueError(f"key {kid} is shorter than {_MIN_RSA_BITS} bits")
    elif kty == "EC":
        expected = _EC_ALGS.get(member.get("crv"))
        if expected is None or alg not in (None, expected):
            raise ValueError(f"key {kid} has unsupported curve or alg")
        alg = expected
    else:
        raise ValueError(f"key {kid} has unsupported kty")
    return VerificationKey(kid=kid, alg=alg, key=jwk.construct(member, alg),
                           published=json.dumps(member, sort_keys=True, separators=(",", ":")))


def keys_from_jwks(document):
    """Parse a JWKS document; return ({kid: VerificationKey}, [problem, ...])."""
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        return {}, ["document has no keys array"]
    keys, problems = {}, []
    for member in members:
        try:
            key = key_from_jwk(member)
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

    def on_retire(self, callback):
        """Nothing to watch: the one secret never leaves."""

    async def refresh(self):
        return None

    async def run(self, interval):
        return None


class JwksSource:
    """Public keys from a JWKS URL, refetched on an unknown kid at most once per interval."""

    def __init__(self, url, *, unix_socket=None, timeout=2.0, min_interval=5.0, clock=time.monotonic, fetch=http_get):
        self._url = url
        self._unix_socket = unix_socket
        self._timeout = timeout
        self._min_interval = min_interval
        self._clock = clock
        self._fetch = fetch
        self._keys = {}
        self._last_attempt = None
        self._lock = asyncio.Lock()
        self._retire_callbacks = []

    def get(self, kid):
        return self._keys.get(kid)

    def __len__(self):
        return len(self._keys)

    def on_retire(self, callback):
        """Call callback() whenever a refresh drops a key, or finds other material under its kid."""
        self._retire_callbacks.append(callback)

    async def refresh(self, force=False):
        """Refetch unless a fetch began within the interval; concurrent callers share one fetch."""
        async with self._lock:
            now = self._clock()
            if not force and self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                return
            self._last_attempt = now
            keys = await asyncio.to_thread(self._load)
            if keys is None:
                return
            retired = [kid for kid, held in self._keys.items()
                       if kid not in keys or keys[kid].published != held.published]
            self._keys = keys
            if retired:
                # A key pulled from the set (retired, or compromised) must stop validating at once:
                # the callbacks drop what it verified (the verdict cache), in the same step as the swap.
                log.info("jwks keys retired", extra={"url": self._url, "kid": " ".join(retired)[:200]})
                for callback in self._retire_callbacks:
                    callback()

    async def run(self, interval):
        """Refetch every interval, so new keys are known before tokens use them and removed ones go."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh(force=True)

    def _load(self):
        try:
            status, body = self._fetch(self._url, unix_socket=self._unix_socket, timeout=self._timeout)
            if status != 200:
                raise OSError(f"status {status}")
            document = json.loads(body)
        except (OSError, ValueError) as error:
            # Keep the last good keys: an auth API outage must not log everyone out.
            log.warning("jwks fetch failed", extra={"url": self._url, "error": str(error)[:200]})
            return None
        keys, problems = keys_from_jwks(document)
        for problem in problems:
            log.warning("jwks key skipped", extra={"url": self._url, "error": problem})
        log.info("jwks loaded", extra={"url": self._url, "keys": len(keys)})
        return keys
