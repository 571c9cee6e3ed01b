"""The claims of a verified token: what they must hold (Policy) and what /verify passes on (Identity)."""

import re
from dataclasses import dataclass

from jwtgate.reasons import TokenRejected

_VISIBLE = re.compile(r"[\x21-\x7e]{1,255}")
# Role and scope values become comma-separated header values: no comma, space, CR or LF. A name
# outside this (an Okta group "Sales Team", say) is left out of the roles or scopes rather than
# refusing the token: fewer names can only grant less, and the token is no less genuine for it.
_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,64}")
# Other mapped claims: printable ASCII without a comma (the array separator).
_HEADER_VALUE = re.compile(r"[\x20-\x2b\x2d-\x7e]{1,256}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_CLAIMS = 64
_MAX_NAMES = 64
# Entries a role or scope claim may list, kept or not: bounds the work one token can ask for.
_MAX_LISTED = 256
# RFC 7519 NumericDate, bounded to the year 9999 so arithmetic never overflows anything.
_MAX_NUMERIC_DATE = 253_402_300_799
# Claims in which issuers say what a token is (Cognito's token_use, others' token_type or type,
# Keycloak's typ). A token that calls itself a refresh or ID token there is no access token, whatever
# its header's typ says; a value that is no string is doubt, so refused too.
_TYPE_CLAIMS = ("token_use", "token_type", "type", "typ")
_NOT_ACCESS = re.compile(r"(urn:ietf:params:oauth:token-type:)?(refresh|id|offline)([_ -]?token)?(\+jwt)?",
                         re.IGNORECASE)


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


def _numeric_date(claims, name):
    value = claims[name]
    # bool is an int subclass; floats and strings are refused outright.
    if type(value) is not int or not 0 <= value <= _MAX_NUMERIC_DATE:
        raise TokenRejected("invalid_claims")
    return value


def _names(value):
    """The header-safe names of a list of strings; a list of anything else refuses the token."""
    if not isinstance(value, list) or len(value) > _MAX_LISTED:
        raise TokenRejected("invalid_claims")
    if not all(isinstance(name, str) for name in value):
        raise TokenRejected("invalid_claims")
    return [name for name in value if _NAME.fullmatch(name)]


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
            value = value.split(" ")
        found.extend(_names(value))
    if len(found) > _MAX_NAMES:
        raise TokenRejected("invalid_claims")
    return tuple(found)


def _audience_matches(value, policy):
    """RFC 7519 4.1.3 / RFC 9068 section 4: one string, or an array of strings, holding one of ours."""
    if isinstance(value, str):
        return value in policy.audiences
    if policy.exact_audience or not isinstance(value, list) or len(value) > _MAX_NAMES:
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
