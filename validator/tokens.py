"""Strict JWT checks around python-jose's signature verification.

python-jose is lenient in places: its base64url decoding accepts padding and
non-canonical spellings, its claim checks accept a string `exp` and read the
wall clock. So we check the compact syntax, the JSON and every claim ourselves
and hand python-jose only the signature check, always with the one algorithm
of the key we hold for the token's `kid` (RFC 8725 sections 2.1 and 3.1).
"""

import binascii
import hashlib
import json
import re
from dataclasses import dataclass


# Reason codes a denial can carry: (RFC 6750 error, description). Nginx's
# jwtgate-http.conf maps the same codes to client messages; a test keeps both lists equal.
REASONS = {
    "missing_token": (None, "Missing Authorization header"),
    "invalid_request": ("invalid_request", "Malformed Authorization header"),
    "malformed": ("invalid_token", "Malformed token"),
    "unsupported_header": ("invalid_token", "Unsupported token header"),
    "wrong_type": ("invalid_token", "Wrong token type"),
    "unsupported_algorithm": ("invalid_token", "Algorithm not allowed for this key"),
    "unknown_key": ("invalid_token", "Unknown signing key"),
    "invalid_signature": ("invalid_token", "Invalid signature"),
    "expired": ("invalid_token", "Token expired"),
    "not_yet_valid": ("invalid_token", "Token not yet valid"),
    "invalid_claims": ("invalid_token", "Invalid claims"),
    "wrong_issuer": ("invalid_token", "Wrong issuer"),
    "wrong_audience": ("invalid_token", "Wrong audience"),
    "revoked": ("invalid_token", "Token revoked"),
    "insufficient_scope": ("insufficient_scope", "Insufficient scope or role"),
    "cross_site_request": ("invalid_request", "Cross-site request refused"),
    "revocation_unavailable": ("invalid_token", "Revocation status unknown"),
    "internal_error": ("invalid_token", "Token could not be verified"),
    # RFC 9449 (DPoP): these denials carry a `DPoP` challenge, not a `Bearer` one.
    "dpop_required": ("invalid_token", "Token is DPoP-bound: send it with the DPoP scheme and a proof"),
    "dpop_unbound": ("invalid_token", "Token is not DPoP-bound: send it with the Bearer scheme"),
    "invalid_dpop_proof": ("invalid_dpop_proof", "Invalid DPoP proof"),
    "dpop_replayed": ("invalid_dpop_proof", "DPoP proof replayed"),
    # Section 9: the proof lacks a current server nonce; the answer carries one in DPoP-Nonce.
    "use_dpop_nonce": ("use_dpop_nonce", "Resource server requires nonce in DPoP proof"),
}

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
_VISIBLE = re.compile(r"[\x21-\x7e]{1,255}")
# Role and scope values become comma-separated header values: no comma, space, CR or LF.
_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,64}")
# Other mapped claims: printable ASCII without a comma (the array separator).
_HEADER_VALUE = re.compile(r"[\x20-\x2b\x2d-\x7e]{1,256}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_HEADER_BYTES = 1024
# python's json module would parse a few hundred levels of `[[[...]]]` inside a 4 KiB token, and
# refuses a thousand only by running out of recursion. No token or DPoP proof needs more than a
# few levels: deeper JSON is `malformed` before json.loads sees it.
MAX_JSON_DEPTH = 10
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_MAX_CLAIMS = 64
_MAX_NAMES = 64
# RFC 7519 NumericDate, bounded to the year 9999 so arithmetic never overflows anything.
_MAX_NUMERIC_DATE = 253_402_300_799
# Claims in which issuers say what a token is (Cognito's token_use, others' token_type or type,
# Keycloak's typ). A token that calls itself a refresh or ID token there is no access token, whatever
# its header's typ says; a value that is no string is doubt, so refused too.
_TYPE_CLAIMS = ("token_use", "token_type", "type", "typ")
_NOT_ACCESS = re.compile(r"(urn:ietf:params:oauth:token-type:)?(refresh|id|offline)([_ -]?token)?(\+jwt)?",
                         re.IGNORECASE)


class TokenRejected(Exception):
    """A token or request was refused; `reason` is a key of REASONS."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class UnknownKey(TokenRejected):
    """The token names a `kid` its provider's key set lacks; refetching that set may help."""

    def __init__(self, kid, keys=None):
        super().__init__("unknown_key")
        self.kid = kid
        self.keys = keys


@dataclass(frozen=True, slots=True, init=False)
class Identity:
    """The verified facts about a token that /verify passes on, built small: the cache holds 100k of them."""

    # sub, jti and sid in one string, separated by spaces, which none of them can hold (_VISIBLE); an
    # empty jti where the token has none. One string object instead of three keeps cached verdicts small.
    names: str
    roles: tuple
    scopes: tuple
    iat: int
    exp: int
    # RFC 9449 section 6.1: the SHA-256 thumbprint of the key the token is bound to (cnf.jkt), or None.
    jkt: str | None
    # Further claims mapped to headers (VALIDATOR_CLAIM_HEADERS): ((claim, (value, ...)), ...).
    extra: tuple
    # VALIDATOR_FORWARD_CLAIMS: the token's payload segment, base64url JSON of exactly the claims verified.
    claims: str | None
    # The name of the provider that issued the token (Policy.provider).
    provider: str

    def __init__(self, sub, roles, scopes, jti, iat, exp, sid=None, jkt=None, extra=(), claims=None, provider=""):
        jti = jti or ""
        if " " in sub or " " in jti or (sid is not None and " " in sid):
            raise ValueError("sub, jti and sid must not hold spaces")
        setattr_ = object.__setattr__
        setattr_(self, "names", f"{sub} {jti}" if sid is None else f"{sub} {jti} {sid}")
        setattr_(self, "roles", roles)
        setattr_(self, "scopes", scopes)
        setattr_(self, "iat", iat)
        setattr_(self, "exp", exp)
        setattr_(self, "jkt", jkt)
        setattr_(self, "extra", extra)
        setattr_(self, "claims", claims)
        setattr_(self, "provider", provider)

    @property
    def sub(self):
        return self.names.partition(" ")[0]

    @property
    def jti(self):
        return self.ids()[1]

    @property
    def sid(self):
        return self.ids()[2]

    def ids(self):
        """[sub, jti, sid], jti and sid None when the token has none: what a revocation can name, in one split."""
        names = self.names.split(" ")
        if len(names) == 2:
            names.append(None)
        if not names[1]:
            names[1] = None
        return names

    def values(self, claim):
        """The claim's values as a tuple of strings (empty when absent)."""
        if claim == "sub":
            return (self.sub,)
        if claim == "roles":
            return self.roles
        if claim == "scope":
            return self.scopes
        for name, values in self.extra:
            if name == claim:
                return values
        return ()


# Our auth API's access tokens carry all of these; other providers' need fewer (validator.providers).
OWN_TOKEN_CLAIMS = frozenset({"exp", "iat", "sub", "iss", "aud", "jti"})


@dataclass(frozen=True)
class Policy:
    """What a token of one provider must satisfy besides its signature."""

    issuer: str
    audiences: tuple
    accepted_typ: tuple
    leeway_seconds: int
    # The claim naming the audience: `aud` (RFC 7519 4.1.3), or `client_id` for Cognito's access tokens.
    audience_claim: str = "aud"
    # The legacy rule: the claim is one string, never an array (RFC 9068 section 4 allows an array).
    exact_audience: bool = False
    required_claims: frozenset = frozenset({"exp", "iat", "sub", "iss"})
    # ((claim path, (allowed value, ...)), ...): each claim must be present and hold one of its values.
    claim_rules: tuple = ()
    # Claim paths whose values become roles and scopes: arrays of names, or one space-separated string.
    roles: tuple = ("roles",)
    scopes: tuple = ("scope",)
    # Claims besides sub, roles and scope that become headers, so must be header-safe.
    extra_claims: tuple = ()
    # Whether the whole claim set goes to the backend too (Identity.claims).
    forward_claims: bool = False
    # The provider's name, kept in each Identity so a location can restrict providers after the cache.
    provider: str = ""
    # The algorithms this provider's tokens may use (None: whatever its keys are bound to).
    algorithms: frozenset | None = None


def token_digest(token):
    """The cache key: SHA-256 of the whole token, as an int (64 bytes in memory; the digest's bytes take 80)."""
    return int.from_bytes(hashlib.sha256(token.encode("ascii")).digest(), "big")


def _b64decode(segment):
    # Only the canonical spelling is accepted: the unused low bits of the last character are
    # zero, so one token has exactly one string form (and one cache key).
    if not _SEGMENT.fullmatch(segment) or segment[-1] not in _CANONICAL_LAST[len(segment) % 4]:
        raise TokenRejected("malformed")
    try:
        return binascii.a2b_base64(segment.encode("ascii").translate(_FROM_URLSAFE) + b"==", strict_mode=False)
    except binascii.Error:
        raise TokenRejected("malformed") from None


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


def _json_object(data):
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
# writes one per key, so a verdict-cache miss skips decoding it (parse: 8.7 -> 5.6 us, issue #6). Bounded
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
        header_bytes = _b64decode(header_segment)
        if len(header_bytes) > _MAX_HEADER_BYTES:
            raise TokenRejected("malformed")
        header = _json_object(header_bytes)
    claims = _json_object(_b64decode(claims_segment))
    signature = _b64decode(signature_segment)
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


def check_type(header, accepted):
    """RFC 9068 section 2.1: `typ` is at+jwt; `application/` may prefix it (RFC 7515 section 4.1.9).

    "" in `accepted` admits a header without `typ`, as some providers' access tokens have.
    """
    if "typ" not in header and "" in accepted:
        return
    typ = header.get("typ")
    if not isinstance(typ, str):
        raise TokenRejected("wrong_type")
    typ = typ.lower()
    if typ.startswith("application/"):
        typ = typ[len("application/"):]
    if typ not in accepted:
        raise TokenRejected("wrong_type")


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
    """Check the signature with our key's object, using only the algorithm bound to the key."""
    if header["alg"] != key.alg:
        raise TokenRejected("unsupported_algorithm")
    if not signature_verifies(token, signature, key.key):
        raise TokenRejected("invalid_signature")


def _numeric_date(claims, name):
    value = claims[name]
    # bool is an int subclass; floats and strings are refused outright.
    if type(value) is not int or not 0 <= value <= _MAX_NUMERIC_DATE:
        raise TokenRejected("invalid_claims")
    return value


def _names(value):
    if not isinstance(value, list) or len(value) > _MAX_NAMES:
        raise TokenRejected("invalid_claims")
    for name in value:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TokenRejected("invalid_claims")
    return value


def _unshared(value):
    return value


_ABSENT = object()


def claim_at(claims, path):
    """The value at a claim path, or _ABSENT: the whole name first, so `https://ns.example/roles` or
    `cognito:groups` is one claim, then dot-separated members of objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value = claims
    for member in path.split("."):
        if not isinstance(value, dict) or member not in value:
            return _ABSENT
        value = value[member]
    return value


def _collect(claims, paths, separated):
    """The names at every path, in order: arrays of names, or (where `separated`) one space-delimited
    string (RFC 8693 section 4.2 `scope`; Entra's `scp`)."""
    found = []
    for path in paths:
        value = claim_at(claims, path)
        if value is _ABSENT:
            continue
        if path == "scope" and not isinstance(value, str):
            # RFC 8693 section 4.2 (and RFC 9068 2.2.3): `scope` is one string; arrays go by other names.
            raise TokenRejected("invalid_claims")
        if isinstance(value, str) and separated:
            value = value.split(" ") if value else []
        found.extend(_names(value))
    if len(found) > _MAX_NAMES:
        raise TokenRejected("invalid_claims")
    return tuple(found)


def _audience_matches(value, policy):
    """RFC 7519 4.1.3 / RFC 9068 section 4: one string, or an array of strings, holding one of ours."""
    if isinstance(value, str):
        return value in policy.audiences
    if policy.exact_audience or not isinstance(value, list) or not 0 < len(value) <= _MAX_NAMES:
        return False
    if not all(isinstance(item, str) for item in value):
        return False
    return any(item in policy.audiences for item in value)


def _rule_holds(value, allowed):
    # A rule names strings; an integer claim (Okta's `ver: 1`) compares as its decimal text.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return str(value) in allowed


def _visible(claims, name, required):
    if name not in claims and not required:
        return None
    value = claims.get(name)
    if not (isinstance(value, str) and _VISIBLE.fullmatch(value)):
        raise TokenRejected("invalid_claims")
    return value


def check_claims(claims, policy, now, share=_unshared, payload=None):
    """Check required claims, their types and the time window; return the Identity."""
    # `share` (VerdictCache.share) gives the copy of a role list, scope list, iat or exp that the
    # Identity keeps, so that cached verdicts hold one copy of each common value. `payload`, the
    # token's claims segment, becomes the Identity's `claims`: the Verifier passes it only when the
    # policy forwards them.
    if len(claims) > _MAX_CLAIMS:
        raise TokenRejected("invalid_claims")
    # Before the required claims: an ID token lacks what an access token must carry (Cognito's client_id,
    # Entra's azp), and its own type claim says why better than a missing claim would.
    for name in _TYPE_CLAIMS:
        if name in claims:
            value = claims[name]
            if not isinstance(value, str) or _NOT_ACCESS.fullmatch(value.strip()):
                raise TokenRejected("wrong_type")
    if not claims.keys() >= policy.required_claims:
        raise TokenRejected("invalid_claims")
    exp = _numeric_date(claims, "exp")
    # A token without iat (where the provider allows that) counts as issued at 0: any user-wide
    # revocation cutoff then covers it, never the other way round.
    iat = _numeric_date(claims, "iat") if "iat" in claims else 0
    nbf = _numeric_date(claims, "nbf") if "nbf" in claims else None
    sub = _visible(claims, "sub", True)
    jti = _visible(claims, "jti", False)
    sid = _visible(claims, "sid", False)
    roles = _collect(claims, policy.roles, separated=False)
    scopes = _collect(claims, policy.scopes, separated=True)
    if claims.get("iss") != policy.issuer:
        raise TokenRejected("wrong_issuer")
    if not _audience_matches(claims.get(policy.audience_claim), policy):
        raise TokenRejected("wrong_audience")
    for path, allowed in policy.claim_rules:
        if not _rule_holds(claim_at(claims, path), allowed):
            raise TokenRejected("invalid_claims")
    leeway = policy.leeway_seconds
    if now >= exp + leeway:
        raise TokenRejected("expired")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise TokenRejected("not_yet_valid")
    if exp <= iat:
        raise TokenRejected("invalid_claims")
    extra = tuple((name, _header_values(value)) for name in policy.extra_claims
                  if (value := claim_at(claims, name)) is not _ABSENT)
    return Identity(sub=sub, roles=share(roles), scopes=share(scopes), jti=jti, iat=share(iat), exp=share(exp),
                    sid=sid, jkt=_confirmation(claims), extra=extra, claims=payload, provider=policy.provider)


def _confirmation(claims):
    """RFC 7800 `cnf`: only a DPoP key thumbprint (`jkt`), which we enforce; any other binding
    (mTLS `x5t#S256`, say) we cannot check, so the token is refused rather than taken as a bearer token."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    if not isinstance(cnf, dict) or cnf.keys() != {"jkt"} or not isinstance(cnf["jkt"], str) \
            or not _JKT.fullmatch(cnf["jkt"]):
        raise TokenRejected("invalid_claims")
    return cnf["jkt"]


def _header_values(value):
    """A mapped claim as header-safe strings; anything else refuses the token rather than reach a backend."""
    items = value if isinstance(value, list) else [value]
    if len(items) > _MAX_NAMES:
        raise TokenRejected("invalid_claims")
    values = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise TokenRejected("invalid_claims")
        text = str(item)
        if not _HEADER_VALUE.fullmatch(text) or text != text.strip():
            raise TokenRejected("invalid_claims")
        values.append(text)
    return tuple(values)
