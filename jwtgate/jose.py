"""Strict JWS parsing around python-jose's signature verification, for tokens, proofs and assertions.

python-jose is lenient in places: its base64url decoding accepts padding and
non-canonical spellings, its claim checks accept a string `exp` and read the
wall clock. So we check the compact syntax and the JSON here, every claim in
jwtgate.claims, and hand python-jose only the signature check, always with the one algorithm
of the key we hold for the token's `kid` (RFC 8725 sections 2.1 and 3.1).
"""

import binascii
import hashlib
import json
import re

from jwtgate.reasons import TokenRejected

# Header members we understand. Anything else, notably jwk, jku, x5u, x5c
# (key material chosen by the sender), crit, b64, enc and zip, is refused.
# x5t and x5t#S256 (RFC 7515 sections 4.1.7-4.1.8: certificate thumbprints, which Entra ID and
# others send beside `kid`) are information only: never used to pick a key, only checked for shape.
_ALLOWED_HEADER = frozenset({"alg", "typ", "kid", "x5t", "x5t#S256"})
# base64url of a SHA-1 (20 bytes) and of a SHA-256 (32 bytes) digest.
_THUMBPRINTS = {"x5t": re.compile(r"[A-Za-z0-9_-]{27}"), "x5t#S256": re.compile(r"[A-Za-z0-9_-]{43}")}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# RFC 4648 section 3.5: a canonical encoding's last character has its unused low bits zero. By the
# segment's length mod 4: every character, none (impossible length), 4 of 64, 16 of 64.
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST = (frozenset(_BASE64URL), frozenset(), frozenset(_BASE64URL[::16]), frozenset(_BASE64URL[::4]))
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_KID = re.compile(r"[\x21-\x7e]{1,128}")
_MAX_HEADER_BYTES = 1024
# python's json module would parse a few hundred levels of `[[[...]]]` inside a 4 KiB token, and
# refuses a thousand only by running out of recursion. No token or DPoP proof needs more than a
# few levels: deeper JSON is `malformed` before json.loads sees it.
MAX_JSON_DEPTH = 10
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def token_digest(token):
    """The cache key: SHA-256 of the whole token, as an int (64 bytes in memory; the digest's bytes take 80)."""
    return int.from_bytes(hashlib.sha256(token.encode("ascii")).digest(), "big")


def b64decode(segment):
    """The bytes of a base64url segment in its one canonical spelling, or TokenRejected("malformed")."""
    # Only the canonical spelling is accepted: the unused low bits of the last character are
    # zero, so one token has exactly one string form (and one cache key).
    if not _SEGMENT.fullmatch(segment) or segment[-1] not in _CANONICAL_LAST[len(segment) % 4]:
        raise TokenRejected("malformed")
    # Nothing left for binascii to refuse: a length of 4n+1, the one it cannot decode, has no
    # canonical last character, and the surplus padding is ignored.
    return binascii.a2b_base64(segment.encode("ascii").translate(_FROM_URLSAFE) + b"==")


def exceeds_depth(data, limit=MAX_JSON_DEPTH):
    """True when the JSON text in `data` nests arrays and objects more than `limit` deep.

    Brackets inside strings do not count. The text need not be valid JSON: the parser
    judges that later; this only bounds the nesting it will be given.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def _reject_duplicates(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


# Built once: json.loads with these arguments would build a decoder per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def json_object(data):
    """The JSON object in `data`: strict (no duplicate members, NaN or deep nesting), or TokenRejected("malformed")."""
    if exceeds_depth(data):
        raise TokenRejected("malformed")
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise TokenRejected("malformed") from None
    if not isinstance(value, dict):
        raise TokenRejected("malformed")
    return value


# JOSE header segments that passed every check of parse(), with their decoded headers: an issuer
# writes one per key, so a verdict-cache miss skips decoding it. Bounded
# like VerdictCache.share: cleared when full, so headers an attacker makes up only cost a full parse.
_KNOWN_HEADERS = {}
_MAX_KNOWN_HEADERS = 64


def parse(token):
    """Split and decode a compact JWS strictly; return (header, claims, signature). Verifies nothing.

    The header is shared between tokens that carry the same one: read it, never change it.
    """
    parts = token.split(".")
    if len(parts) != 3:
        # Five parts would be a JWE: encrypted tokens are never accepted.
        raise TokenRejected("malformed")
    header_segment, claims_segment, signature_segment = parts
    header = _KNOWN_HEADERS.get(header_segment)
    known = header is not None
    if not known:
        header_bytes = b64decode(header_segment)
        if len(header_bytes) > _MAX_HEADER_BYTES:
            raise TokenRejected("malformed")
        header = json_object(header_bytes)
    claims = json_object(b64decode(claims_segment))
    signature = b64decode(signature_segment)
    if not known:
        _check_header(header)
        if len(_KNOWN_HEADERS) >= _MAX_KNOWN_HEADERS:
            _KNOWN_HEADERS.clear()
        _KNOWN_HEADERS[header_segment] = header
    return header, claims, signature


def _check_header(header):
    if not header.keys() <= _ALLOWED_HEADER:
        raise TokenRejected("unsupported_header")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenRejected("unsupported_algorithm")
    kid = header.get("kid", "")
    if not isinstance(kid, str) or (kid and not _KID.fullmatch(kid)):
        raise TokenRejected("unsupported_header")
    for member, shape in _THUMBPRINTS.items():
        if member in header and not (isinstance(header[member], str) and shape.fullmatch(header[member])):
            raise TokenRejected("unsupported_header")


def signature_verifies(jws, signature, key):
    """True when `signature` (decoded) signs the compact JWS `jws` under `key` (python-jose's or ours).

    The key object's own verify(), as python-jose documents it: jws.verify() would parse the
    token a second time, laxer than our parse did (about a quarter of an RS256 check).
    """
    try:
        return key.verify(jws[:jws.rindex(".")].encode("ascii"), signature) is True
    except Exception:
        # Backends return False for a bad signature, but may raise ValueError or TypeError from
        # deeper down: every failure here means "not verified".
        return False


def verify_signature(token, header, signature, key):
    """Check the signature with python-jose, using only the algorithm bound to our key."""
    if header["alg"] != key.alg:
        raise TokenRejected("unsupported_algorithm")
    if not signature_verifies(token, signature, key.key):
        raise TokenRejected("invalid_signature")
