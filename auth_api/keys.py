"""Signing keys: RS256 key files under <data_dir>/keys/, or one HS256 shared secret."""

import base64
import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk

from jwtgate.files import locked, write_atomically

logger = logging.getLogger(__name__)

RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
# <created unix time, 10 digits>-<kid>.pem: names sort by age, so the newest key is the greatest name.
KEY_FILE = re.compile(r"(\d{10})-([A-Za-z0-9_-]{43})\.pem")


class KeyFileError(Exception):
    """A file in the keys directory is not the key its name claims."""


@dataclass(frozen=True)
class SigningKey:
    """The key new tokens are signed with; kid is None for HS256."""

    kid: str | None
    algorithm: str
    key: object = field(repr=False)


def keys_dir(data_dir):
    return os.path.join(data_dir, "keys")


def _b64url_uint(number):
    raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(public_key):
    """The RFC 7517 public members of an RSA key, with its RFC 7638 thumbprint as kid."""
    numbers = public_key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    # RFC 7638 §3: the required members only, sorted, no whitespace, SHA-256, base64url without padding.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": members["n"], "e": members["e"]}


def key_files(directory):
    """The key file names in directory, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if KEY_FILE.fullmatch(name))


def _ensure_directory(directory):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # makedirs' mode is filtered by the umask and ignored for an existing directory.
    os.chmod(directory, 0o700)


def generate_key(directory, *, clock=time.time):
    """Write a new RSA key that becomes the newest, so the active one; the caller holds the lock."""
    private = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
    kid = public_jwk(private.public_key())["kid"]
    existing = key_files(directory)
    created = int(clock())
    if existing:
        # Two keys made within one second must still sort in the order they were made.
        created = max(created, int(KEY_FILE.fullmatch(existing[-1]).group(1)) + 1)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomically(os.path.join(directory, f"{created:010d}-{kid}.pem"), pem)
    logger.info("signing key generated", extra={"kid": kid})
    return kid


def ensure_key(directory, *, clock=time.time):
    """Generate the first key unless one exists; safe to call from several processes at once."""
    _ensure_directory(directory)
    if key_files(directory):
        return
    with locked(directory):
        # Another process may have generated it while this one waited for the lock.
        if not key_files(directory):
            generate_key(directory, clock=clock)


def _load_private(directory, name):
    with open(os.path.join(directory, name), "rb") as handle:
        private = serialization.load_pem_private_key(handle.read(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise KeyFileError(f"{name} does not hold an RSA private key")
    if public_jwk(private.public_key())["kid"] != KEY_FILE.fullmatch(name).group(2):
        raise KeyFileError(f"{name}: the kid in the name is not the key's thumbprint")
    return private


def _created(name):
    return int(KEY_FILE.fullmatch(name).group(1))


def _active_index(names, now, activation_delay):
    """The newest key whose activation time has come; the oldest when none has (the very first key)."""
    ready = [index for index, name in enumerate(names) if _created(name) + activation_delay <= now]
    return ready[-1] if ready else 0


def rotate(directory, *, activation_delay, retention, clock=time.time):
    """Add a key that signs once activation_delay has passed, then prune keys nobody can need.

    The new key is published in the JWKS at once but signs only later, so every
    validator has fetched it before the first token it signed arrives. A key is
    deleted once its successor has been active for `retention` (the longest
    access token lifetime plus margin): every token it signed has expired by then.
    """
    _ensure_directory(directory)
    with locked(directory):
        kid = generate_key(directory, clock=clock)
        _prune(directory, activation_delay=activation_delay, retention=retention, now=clock())
    return kid


def rotate_if_due(directory, *, every, activation_delay, retention, clock=time.time):
    """Rotate when the newest key is older than `every` seconds; several workers may call this at once."""
    with locked(directory):
        names = key_files(directory)
        if names and clock() - _created(names[-1]) < every:
            return None
    return rotate(directory, activation_delay=activation_delay, retention=retention, clock=clock)


def start_rotation_schedule(settings, *, clock=time.time):
    """A daemon thread that rotates the key every AUTH_KEY_ROTATION_SECONDS (each worker runs one; the lock dedups)."""
    directory = keys_dir(settings.data_dir)
    every = settings.key_rotation_seconds
    retention = settings.access_token_ttl_seconds + settings.revocation_margin_seconds

    def loop():
        while True:
            time.sleep(min(60, every / 4))
            try:
                kid = rotate_if_due(directory, every=every, activation_delay=settings.key_activation_delay_seconds,
                                    retention=retention, clock=clock)
            except Exception:
                logger.exception("scheduled key rotation failed")
                continue
            if kid is not None:
                logger.info("signing key rotated on schedule", extra={"kid": kid})

    thread = threading.Thread(target=loop, name="key-rotation", daemon=True)
    thread.start()
    return thread


def _prune(directory, *, activation_delay, retention, now):
    names = key_files(directory)
    for name, successor in zip(names, names[1:]):
        if _created(successor) + activation_delay + retention < now:
            os.unlink(os.path.join(directory, name))
            logger.info("signing key retired", extra={"kid": KEY_FILE.fullmatch(name).group(2)})


class KeyRing:
    """The active signing key and the public keys published as the JWKS."""

    def __init__(self, active, public_keys):
        self.active = active
        self._public_keys = tuple(public_keys)

    @classmethod
    def open(cls, settings, *, clock=time.time):
        """The key ring the settings call for, generating the first RS256 key when there is none."""
        if settings.hs256_secret is not None:
            return cls.from_secret(settings.hs256_secret)
        directory = keys_dir(settings.data_dir)
        ensure_key(directory, clock=clock)
        return KeyDirectory(directory, activation_delay=settings.key_activation_delay_seconds, clock=clock)

    @classmethod
    def from_secret(cls, secret):
        # No kid and no published key: an HS256 secret verifies as well as it signs.
        return cls(SigningKey(None, "HS256", jwk.construct(secret, "HS256")), ())

    @classmethod
    def load(cls, directory, *, now=None, activation_delay=0):
        """Every key file in directory; the newest active one signs."""
        names = key_files(directory)
        if not names:
            raise KeyFileError(f"no signing key in {directory}")
        privates = [_load_private(directory, name) for name in names]
        public_keys = [public_jwk(private.public_key()) for private in privates]
        index = len(names) - 1 if now is None else _active_index(names, now, activation_delay)
        active = SigningKey(public_keys[index]["kid"], "RS256", jwk.construct(privates[index], "RS256"))
        return cls(active, public_keys)

    def jwks(self):
        """The RFC 7517 JWK Set of public keys, newest first; empty for HS256."""
        return {"keys": [dict(key) for key in reversed(self._public_keys)]}


class KeyDirectory:
    """A KeyRing that follows its directory: rotations by another process or worker show up here."""

    def __init__(self, directory, *, activation_delay, clock=time.time):
        self._directory = directory
        self._activation_delay = activation_delay
        self._clock = clock
        self._state = None
        self._ring = None

    def _current(self):
        names = key_files(self._directory)
        now = self._clock()
        # The ring changes when a file comes or goes, or when a published key's time to sign arrives.
        state = (tuple(names), _active_index(names, now, self._activation_delay) if names else None)
        if state != self._state:
            self._ring = KeyRing.load(self._directory, now=now, activation_delay=self._activation_delay)
            self._state = state
        return self._ring

    @property
    def active(self):
        return self._current().active

    def jwks(self):
        return self._current().jwks()
