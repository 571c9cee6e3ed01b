"""DPoP proofs (RFC 9449): the strict checks of section 4.3, shared by the validator and the auth API.

A proof is a JWS the client signs for one request with a key of its own, whose public half rides in
the header (`jwk`). We check its syntax as strictly as an access token's (the same canonical
base64url and duplicate-free JSON), hand python-jose only the signature check with the one
algorithm the key allows, and check every claim ourselves. Replay (`jti`) is the caller's step, via
jwtgate.replay, after every other check passed, so an invalid proof never uses up a `jti`
(the validator's is validator.proof_gate).
"""

import base64
import hashlib
import hmac
import json
import math
import re
import string
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cachetools import LRUCache
from jose import jwk

from jwtgate.jose import b64decode, json_object, signature_verifies
from jwtgate.reasons import TokenRejected

# RFC 9449 section 5.1 (dpop_signing_alg_values_supported): what we verify. Never none or HMAC:
# a proof must be signed with a private key only the client holds.
ALGORITHMS = ("ES256", "RS256")
PROOF_TYPE = "dpop+jwt"
MAX_PROOF_BYTES = 4096
_HEADER = frozenset({"typ", "alg", "jwk"})
# RFC 7638 section 3.2: the required members, in lexicographic order, are all a thumbprint covers.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JTI = re.compile(r"[\x21-\x7e]{1,255}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_MIN_RSA_BITS, _MAX_RSA_BITS = 2048, 8192
# Nonce lifetimes (VALIDATOR_ and AUTH_DPOP_NONCE_SECONDS): shorter would send clients back for a new
# nonce every few requests.
MIN_NONCE_SECONDS = 10
# Client keys whose objects ProofChecker keeps built.
_BUILT_KEYS = 1024


class ProofRejected(Exception):
    """A DPoP proof failed a check; `detail` says which, for logs only (clients see one error)."""

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Proof:
    """A checked proof: the key's thumbprint, what the replay cache needs, and its `nonce` (None without)."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None = None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(key):
    """RFC 7638 JWK SHA-256 thumbprint (base64url) of a public EC or RSA JWK."""
    members = {name: key[name] for name in _THUMBPRINT_MEMBERS[key["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def access_token_hash(token):
    """RFC 9449 section 4.2 `ath`: base64url of the SHA-256 of the access token's ASCII."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\]")
_URI_CHARS = re.compile(r"[\x21-\x7e]{1,4096}")


def _percent(match):
    # RFC 3986 section 6.2.2.2: decode unreserved characters, upper-case the rest.
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path):
    # RFC 3986 section 5.2.4, on an absolute path.
    output = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def normalize_uri(uri):
    """RFC 9449 section 4.3 `htu` form: syntax- and scheme-based normalisation (RFC 3986 6.2.2, 6.2.3),
    without query and fragment; None when it is no absolute http(s) URI."""
    if not isinstance(uri, str) or not _URI_CHARS.fullmatch(uri):
        return None
    try:
        parts = urlsplit(uri)
        scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc:
        return None
    host = f"[{host}]" if ":" in host else host
    if not _HOST.fullmatch(host):
        return None
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _remove_dot_segments(_PERCENT.sub(_percent, parts.path or "/"))
    return f"{scheme}://{authority}{path}"


def request_urls(origins, uri):
    """The normalised URLs a proof's `htu` may name: each public origin with the path of $request_uri.

    RFC 9449 section 4.3: `htu` names this server, so the origins are the gateway's own (a setting),
    never the request's Host, which the client chooses; the query is no part of it.
    """
    if not uri or not uri.startswith("/"):
        return frozenset()
    path = uri.split("?", 1)[0]
    return frozenset(url for url in (normalize_uri(origin + path) for origin in origins) if url is not None)


def _public_jwk(header):
    """The header's `jwk`, which must be public and fit `alg`: its required members only."""
    key = header.get("jwk")
    if not isinstance(key, dict):
        raise ProofRejected("jwk_missing")
    if key.keys() & _PRIVATE_MEMBERS:
        raise ProofRejected("jwk_private")
    kty, alg = key.get("kty"), header["alg"]
    members = _THUMBPRINT_MEMBERS.get(kty)
    if members is None or (kty, alg) not in (("EC", "ES256"), ("RSA", "RS256")):
        raise ProofRejected("jwk_alg_mismatch")
    if any(not isinstance(key.get(name), str) for name in members):
        raise ProofRejected("jwk_invalid")
    if key.get("alg", alg) != alg:
        raise ProofRejected("jwk_alg_mismatch")
    try:
        if kty == "EC":
            if key["crv"] != "P-256" or len(b64decode(key["x"])) != 32 or len(b64decode(key["y"])) != 32:
                raise ProofRejected("jwk_invalid")
        else:
            bits = int.from_bytes(b64decode(key["n"]), "big").bit_length()
            if not _MIN_RSA_BITS <= bits <= _MAX_RSA_BITS or len(key["e"]) > 8:
                raise ProofRejected("jwk_invalid")
    except ProofRejected:
        raise
    except Exception:
        # TokenRejected from the strict base64url.
        raise ProofRejected("jwk_invalid") from None
    # Only the required members: nothing else the sender wrote shapes the key.
    return {name: key[name] for name in members}


def _build_key(public, alg):
    """(verification key, thumbprint) of a checked public JWK."""
    try:
        return jwk.construct(public, alg), thumbprint(public)
    except Exception:
        # The backend refusing the point or the modulus.
        raise ProofRejected("jwk_invalid") from None


class ProofChecker:
    """Checks DPoP proofs against one request; stateless apart from its clock."""

    def __init__(self, *, iat_window, clock=time.time):
        self._window = iat_window
        self._clock = clock
        # A client signs every proof with one key: each key object is built once (about a sixth of
        # a proof check), in a bounded LRU, so a stream of new keys only evicts older ones.
        self._keys = LRUCache(maxsize=_BUILT_KEYS)
        self._keys_lock = threading.Lock()

    def _key(self, public, alg):
        name = (alg, *sorted(public.items()))
        with self._keys_lock:
            built = self._keys.get(name)
        if built is None:
            built = _build_key(public, alg)
            with self._keys_lock:
                self._keys[name] = built
        return built

    @property
    def iat_window(self):
        return self._window

    def check(self, proof, *, method, urls, access_token=None):
        """The checked Proof, or ProofRejected. `urls` is request_urls(...); `access_token` demands `ath`."""
        if not proof:
            raise ProofRejected("missing")
        # A comma: Falcon joined two DPoP headers (RFC 9449 section 4.3 step 1: exactly one).
        if len(proof) > MAX_PROOF_BYTES or "," in proof:
            raise ProofRejected("malformed")
        parts = proof.split(".")
        if len(parts) != 3:
            raise ProofRejected("malformed")
        try:
            header = json_object(b64decode(parts[0]))
            claims = json_object(b64decode(parts[1]))
            signature = b64decode(parts[2])
        except TokenRejected:
            raise ProofRejected("malformed") from None
        if header.get("typ") != PROOF_TYPE:
            raise ProofRejected("typ")
        if header.get("alg") not in ALGORITHMS:
            raise ProofRejected("alg")
        if not header.keys() <= _HEADER:
            raise ProofRejected("header_member")
        key, jkt = self._key(_public_jwk(header), header["alg"])
        if not signature_verifies(proof, signature, key):
            raise ProofRejected("signature")
        jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
        if not isinstance(jti, str) or not _JTI.fullmatch(jti):
            raise ProofRejected("jti")
        if not isinstance(htm, str) or not _METHOD.fullmatch(htm) or htm != method:
            raise ProofRejected("htm")
        if normalize_uri(htu) not in urls:
            raise ProofRejected("htu")
        if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
            raise ProofRejected("iat")
        if abs(self._clock() - iat) > self._window:
            raise ProofRejected("iat_window")
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
                raise ProofRejected("ath")
        nonce = claims.get("nonce")
        return Proof(jkt=jkt, jti=jti, iat=int(iat), nonce=nonce if isinstance(nonce, str) else None)

    def replay_key(self, proof):
        """(key, expires_at) for the replay cache: a jti counts per key, until its iat leaves the window."""
        key = hashlib.sha256(f"{proof.jkt}:{proof.jti}".encode("ascii")).digest()
        return key, proof.iat + self._window + 1


_NONCE = re.compile(r"([0-9]{1,12})\.[A-Za-z0-9_-]{22}")


class Nonces:
    """RFC 9449 sections 8 and 9: server-provided nonces, with no state to share.

    A nonce is a time slot of `lifetime` seconds and an HMAC of it under a secret every worker (and
    every host, given the same secret) holds; it is accepted in its own slot and the two beside it
    (clocks of hosts differ), so it is good for at least one lifetime after it is handed out.
    """

    def __init__(self, secret, lifetime, clock=time.time):
        self._secret = secret
        self._lifetime = lifetime
        self._clock = clock
        self._current = (None, None)

    def _mac(self, slot):
        digest = hmac.new(self._secret, f"jwtgate-dpop-nonce:{slot}".encode("ascii"), hashlib.sha256).digest()
        return b64url(digest[:16])

    def _slot(self):
        return math.floor(self._clock() / self._lifetime)

    def current(self):
        """The nonce to hand out now (a DPoP-Nonce header value: RFC 9449 section 8.1's NQCHAR only)."""
        slot = self._slot()
        held, nonce = self._current
        if held != slot:
            nonce = f"{slot}.{self._mac(slot)}"
            self._current = (slot, nonce)
        return nonce

    def valid(self, nonce):
        """Whether a proof's `nonce` claim is one of ours, handed out at most about two lifetimes ago."""
        match = _NONCE.fullmatch(nonce) if isinstance(nonce, str) else None
        if match is None:
            return False
        slot = int(match.group(1))
        # The whole value against the one spelling we hand out (no leading zeros, say).
        return abs(slot - self._slot()) <= 1 and hmac.compare_digest(nonce, f"{slot}.{self._mac(slot)}")
