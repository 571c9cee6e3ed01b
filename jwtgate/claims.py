"""The claims of a verified token: what they must hold (Policy) and what /verify passes on (Identity)."""

import re
from dataclasses import dataclass

from jwtgate.reasons import TokenRejected

_REQUIRED_CLAIMS = frozenset({"exp", "iat", "sub", "iss", "aud", "jti"})
_VISIBLE = re.compile(r"[\x21-\x7e]{1,255}")
# Role and scope values become comma-separated header values: no comma, space, CR or LF.
_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,64}")
# Other mapped claims: printable ASCII without a comma (the array separator).
_HEADER_VALUE = re.compile(r"[\x20-\x2b\x2d-\x7e]{1,256}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
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


@dataclass(frozen=True, slots=True, init=False)
class Identity:
    """The verified facts about a token that /verify passes on, built small: the cache holds 100k of them."""

    # sub, jti and sid in one string, separated by spaces, which none of them can hold (_VISIBLE):
    # one string object instead of two or three keeps each cached verdict smaller.
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

    def __init__(self, sub, roles, scopes, jti, iat, exp, sid=None, jkt=None, extra=(), claims=None):
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
        """[sub, jti, sid], sid None when the token has none: what a revocation can name, in one split."""
        names = self.names.split(" ")
        if len(names) == 2:
            names.append(None)
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


@dataclass(frozen=True)
class Policy:
    """What a token must satisfy besides its signature."""

    issuer: str
    audience: str
    accepted_typ: tuple
    leeway_seconds: int
    # Claims besides sub, roles and scope that become headers, so must be header-safe.
    extra_claims: tuple = ()
    # Whether the whole claim set goes to the backend too (Identity.claims).
    forward_claims: bool = False

def check_type(header, accepted):
    """RFC 9068 section 2.1: `typ` is at+jwt; `application/` may prefix it (RFC 7515 section 4.1.9)."""
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
    if not isinstance(value, list) or len(value) > _MAX_NAMES:
        raise TokenRejected("invalid_claims")
    for name in value:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TokenRejected("invalid_claims")
    return tuple(value)


def _unshared(value):
    return value


def check_claims(claims, policy, now, share=_unshared, payload=None):
    """Check required claims, their types and the time window; return the Identity."""
    # `share` (VerdictCache.share) gives the copy of a role list, scope list, iat or exp that the
    # Identity keeps, so that 100k cached verdicts hold one copy of each common value. `payload`, the
    # token's claims segment, becomes the Identity's `claims`: the Verifier passes it only when the
    # policy forwards them.
    if len(claims) > _MAX_CLAIMS or not claims.keys() >= _REQUIRED_CLAIMS:
        raise TokenRejected("invalid_claims")
    for name in _TYPE_CLAIMS:
        if name in claims:
            value = claims[name]
            if not isinstance(value, str) or _NOT_ACCESS.fullmatch(value.strip()):
                raise TokenRejected("wrong_type")
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf") if "nbf" in claims else None
    sub, jti, iss, aud = claims["sub"], claims["jti"], claims["iss"], claims["aud"]
    if not (isinstance(sub, str) and _VISIBLE.fullmatch(sub)):
        raise TokenRejected("invalid_claims")
    if not (isinstance(jti, str) and _VISIBLE.fullmatch(jti)):
        raise TokenRejected("invalid_claims")
    sid = claims.get("sid")
    if sid is not None and not (isinstance(sid, str) and _VISIBLE.fullmatch(sid)):
        raise TokenRejected("invalid_claims")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise TokenRejected("invalid_claims")
    roles = _names(claims.get("roles", []))
    # RFC 8693 section 4.2: scope is one string of space-delimited names.
    scopes = _names(scope.split(" ") if scope else [])
    if iss != policy.issuer:
        raise TokenRejected("wrong_issuer")
    # One audience, as our issuer writes it: a token minted for several
    # audiences could be replayed against each of them.
    if aud != policy.audience:
        raise TokenRejected("wrong_audience")
    leeway = policy.leeway_seconds
    if now >= exp + leeway:
        raise TokenRejected("expired")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise TokenRejected("not_yet_valid")
    if exp <= iat:
        raise TokenRejected("invalid_claims")
    extra = tuple((name, _header_values(claims[name])) for name in policy.extra_claims if name in claims)
    return Identity(sub=sub, roles=share(roles), scopes=share(scopes), jti=jti, iat=share(iat), exp=share(exp),
                    sid=sid, jkt=_confirmation(claims), extra=extra, claims=payload)


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
