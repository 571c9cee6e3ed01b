"""Identity providers: who issues the tokens we accept, where their keys are, and what their tokens look like.

One provider comes from VALIDATOR_* variables; several from a TOML file (VALIDATOR_PROVIDERS_FILE).
Vendor differences are data (PRESETS), never branches in the checks: a preset only fills the
fields an entry leaves out.
"""

import asyncio
import ipaddress
import re
import tomllib
import urllib.parse
from dataclasses import dataclass

# Claims every token must carry unless a provider says otherwise (issue 20): `jti` is optional, so
# revocation by `jti` applies where one is present, by `sub`/`sid` always.
DEFAULT_REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss")
# Header `typ` values, lower case, `application/` removed; "" stands for a header without `typ`.
DEFAULT_ACCEPTED_TYP = ("at+jwt",)
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})

# Each vendor's access tokens as its documentation describes them (docs/providers/*.md cite the pages).
PRESETS = {
    "generic": {},
    # Our own auth API: RFC 9068 tokens with a jti in every one, and `aud` always one string, so an
    # array claiming to be ours was not made by it.
    "jwtgate": {
        "accepted_typ": ["at+jwt"],
        "required_claims": ["exp", "iat", "sub", "iss", "aud", "jti"],
        "exact_audience": True,
    },
    # Keycloak: header typ JWT, or at+jwt where a client asks for RFC 9068 headers; the payload's own `typ` is
    # Bearer for access tokens, DPoP for DPoP-bound ones (Keycloak's "Securing applications with DPoP"; its
    # resource-server check accepts both), ID or Refresh otherwise; realm roles under realm_access.roles,
    # client roles under resource_access.<client>.roles.
    "keycloak": {
        "accepted_typ": ["jwt", "at+jwt"],
        "claim_rules": {"typ": ["Bearer", "DPoP"]},
        "roles": ["realm_access.roles"],
        "scopes": ["scope"],
    },
    # Auth0 ("Access Token Profiles"): typ JWT (Auth0 profile) or at+jwt (RFC 9068 profile); aud may be an
    # array with the userinfo URL; RBAC permissions in `permissions`.
    "auth0": {
        "accepted_typ": ["at+jwt", "jwt"],
        "roles": ["permissions"],
        "scopes": ["scope"],
    },
    # Okta custom authorization servers ("OpenID Connect & OAuth 2.0 API"): a header of alg and kid only, no
    # typ; scopes as the `scp` array; groups from a custom `groups` claim ("Create API access claims").
    "okta": {
        "accepted_typ": ["", "at+jwt", "jwt"],
        "roles": ["groups"],
        "scopes": ["scp"],
    },
    # Microsoft Entra ID v2 access tokens ("Access token claims reference"): typ always JWT (x5t only in v1.0
    # tokens), aud the API's client ID, `scp` a space-separated string, app roles in `roles`, ver 2.0; `azp`
    # (v2.0 only) tells an access token from an ID token ("ID token claims reference": none there).
    "entra": {
        "accepted_typ": ["jwt"],
        "required_claims": ["exp", "iat", "sub", "iss", "aud", "azp"],
        "claim_rules": {"ver": ["2.0"]},
        "roles": ["roles"],
        "scopes": ["scp"],
    },
    # Amazon Cognito user pools ("Understanding the access token"): a header of kid and alg only; no aud in
    # access tokens, the app client in `client_id`; token_use says access or id; groups in `cognito:groups`.
    "cognito": {
        "accepted_typ": [""],
        "audience_claim": "client_id",
        "required_claims": ["exp", "iat", "sub", "iss", "client_id", "token_use"],
        "claim_rules": {"token_use": ["access"]},
        "roles": ["cognito:groups"],
        "scopes": ["scope"],
    },
}

# A provider's name, as entries and `$jwtgate_providers` spell it.
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_PATH = re.compile(r"[\x21-\x7e]{1,128}")
_ISSUER = re.compile(r"[\x21-\x7e]{1,1024}")
_TYP = re.compile(r"[A-Za-z0-9.+/-]{0,64}")
_MAX_PROVIDERS = 32
_MAX_LIST = 32
_FIELDS = frozenset({
    "preset", "issuer", "audiences", "exact_audience", "audience_claim", "jwks_uri", "ca_file", "allow_http",
    "accepted_typ", "required_claims", "claim_rules", "roles", "scopes", "algorithms", "metadata", "socket",
    "revocations",
})
# Where discovery looks (`metadata` in an entry): OpenID Connect Discovery 1.0, or RFC 8414.
METADATA = {"openid": "openid-configuration", "oauth": "oauth-authorization-server"}


@dataclass(frozen=True)
class Provider:
    """One issuer we trust and the shape of its access tokens."""

    name: str
    issuer: str
    audiences: tuple
    # The claim that names the audience: `aud` (RFC 7519 4.1.3) or, for Cognito, `client_id`.
    audience_claim: str = "aud"
    # The claim must be one string equal to an audience, never an array (our auth API writes one string).
    exact_audience: bool = False
    # None: keys from discovery on the issuer.
    jwks_uri: str | None = None
    ca_file: str | None = None
    # Plain http:// to a host other than loopback only when a provider entry says so.
    allow_http: bool = False
    accepted_typ: tuple = DEFAULT_ACCEPTED_TYP
    required_claims: tuple = DEFAULT_REQUIRED_CLAIMS
    # ((claim path, (allowed value, ...)), ...): each must hold.
    claim_rules: tuple = ()
    roles: tuple = ("roles",)
    scopes: tuple = ("scope",)
    # None: every algorithm a key may carry.
    algorithms: frozenset | None = None
    # The well-known document discovery reads when jwks_uri is not given (METADATA's values).
    discovery_kind: str = METADATA["openid"]
    # A unix socket every fetch of this provider goes through (a provider beside us, like our auth API).
    socket: str | None = None
    # The revocation store (our auth API's logouts and cutoffs) speaks for this provider's tokens.
    # False for a provider that never writes to it: its tokens then match none of those entries,
    # and are not refused when the store cannot be read.
    revocations: bool = True

    @property
    def discovery(self):
        return self.jwks_uri is None


def is_loopback_url(url):
    """True when the URL's host is 127.0.0.0/8, ::1 or localhost."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProblemList:
    """Problems found in provider entries as (setting, why) pairs for ConfigError.

    From a file, each names its entry (`[providers.NAME] field: why`); for the one provider of the
    environment, `fields` maps each field to the variable that set it.
    """

    def __init__(self, setting, fields=None):
        self.setting = setting
        self.fields = fields
        self.items = []

    def add(self, where, why):
        if self.fields is None:
            self.items.append((self.setting, f"{where}: {why}"))
        else:
            self.items.append((self.fields.get(where.rpartition("] ")[2], self.setting), why))


def _strings(value, where, problems, *, allow_empty_items=False, pattern=None):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_LIST:
        problems.add(where, f"must be a string or a list of 1-{_MAX_LIST} strings")
        return ()
    for item in value:
        if not isinstance(item, str) or (not item and not allow_empty_items) or \
                (pattern is not None and not pattern.fullmatch(item)):
            problems.add(where, f"has an invalid item {str(item)[:60]!r}")
            return ()
    return tuple(value)


def _url(value, where, problems, allow_http):
    if not isinstance(value, str) or len(value) > 2048:
        problems.add(where, "must be a URL")
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname and (allow_http or is_loopback_url(value)):
        return value
    problems.add(where, "must be an https:// URL (http:// only for loopback, or with allow_http = true)")
    return None


def build(name, entry, problems, *, own_keys=False):
    """A Provider from one entry (a dict, as TOML gives it), or None with its problems recorded.

    `own_keys`: the keys come from elsewhere (a shared secret), so the issuer need not lead to discovery.
    """
    where = f"[providers.{name}]"
    if not PROVIDER_NAME.fullmatch(name):
        problems.add(where, "a provider name is 1-32 characters: a-z first, then a-z, 0-9, _ or -")
        return None
    if not isinstance(entry, dict):
        problems.add(where, "must be a table")
        return None
    count = len(problems.items)
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        problems.add(where, f"unknown field(s) {', '.join(unknown)[:120]}")
    preset_name = entry.get("preset", "generic")
    preset = PRESETS.get(preset_name) if isinstance(preset_name, str) else None
    if preset is None:
        problems.add(f"{where} preset", f"must be one of {', '.join(sorted(PRESETS))}")
        preset = {}
    merged = {**preset, **entry}

    allow_http = merged.get("allow_http", False)
    if not isinstance(allow_http, bool):
        problems.add(f"{where} allow_http", "must be true or false")
        allow_http = False
    socket = merged.get("socket")
    if socket is not None and (not isinstance(socket, str) or not socket.startswith("/")):
        problems.add(f"{where} socket", "must be an absolute path to a unix socket")
    # A unix socket never leaves the host, whatever the URL's host name says.
    allow_http = allow_http or isinstance(socket, str)
    issuer = merged.get("issuer")
    jwks_uri = merged.get("jwks_uri")
    if jwks_uri is not None:
        jwks_uri = _url(jwks_uri, f"{where} jwks_uri", problems, allow_http)
    if not isinstance(issuer, str) or not _ISSUER.fullmatch(issuer):
        problems.add(f"{where} issuer", "is required: the exact `iss` of the provider's tokens, printable ASCII")
        issuer = None
    elif "jwks_uri" not in merged and not own_keys:
        # Discovery starts from the issuer (OpenID Connect Discovery 4, RFC 8414 3), so it must be a URL.
        _url(issuer, f"{where} issuer", problems, allow_http)
    if "audiences" in merged:
        audiences = _strings(merged["audiences"], f"{where} audiences", problems)
    else:
        audiences = ()
        problems.add(f"{where} audiences", "is required: the audiences (or client ids) your API accepts")
    exact = merged.get("exact_audience", False)
    if not isinstance(exact, bool):
        problems.add(f"{where} exact_audience", "must be true or false")
    audience_claim = merged.get("audience_claim", "aud")
    if audience_claim not in ("aud", "client_id"):
        problems.add(f"{where} audience_claim", "must be aud or client_id")
    ca_file = merged.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
        problems.add(f"{where} ca_file", "must be a file path")
    typ = _strings(merged.get("accepted_typ", list(DEFAULT_ACCEPTED_TYP)), f"{where} accepted_typ", problems,
                   allow_empty_items=True, pattern=_TYP)
    typ = tuple(item.lower().removeprefix("application/") for item in typ)
    required = _strings(merged.get("required_claims", list(DEFAULT_REQUIRED_CLAIMS)),
                        f"{where} required_claims", problems, pattern=_PATH)
    if required and not {"exp", "iss"} <= set(required):
        # Without exp a token never expires; without iss it could not have picked this provider.
        problems.add(f"{where} required_claims", "must include exp and iss")
    roles = _strings(merged.get("roles", ["roles"]), f"{where} roles", problems, pattern=_PATH)
    scopes = _strings(merged.get("scopes", ["scope"]), f"{where} scopes", problems, pattern=_PATH)
    rules = merged.get("claim_rules", {})
    claim_rules = []
    if not isinstance(rules, dict) or len(rules) > _MAX_LIST:
        problems.add(f"{where} claim_rules", "must be a table of claim = value or [values]")
    else:
        for path, allowed in sorted(rules.items()):
            if not _PATH.fullmatch(path):
                problems.add(f"{where} claim_rules", f"invalid claim path {path[:60]!r}")
                continue
            claim_rules.append((path, _strings(allowed, f"{where} claim_rules.{path}", problems)))
    algorithms = merged.get("algorithms")
    if algorithms is not None:
        algorithms = _strings(algorithms, f"{where} algorithms", problems)
        if not set(algorithms) <= ALGORITHMS:
            problems.add(f"{where} algorithms", f"must be among {', '.join(sorted(ALGORITHMS))}")
        algorithms = frozenset(algorithms)
    metadata = merged.get("metadata", "openid")
    if metadata not in METADATA:
        problems.add(f"{where} metadata", "must be openid or oauth")
    revocations = merged.get("revocations", True)
    if not isinstance(revocations, bool):
        problems.add(f"{where} revocations", "must be true or false")
    if len(problems.items) > count:
        return None
    return Provider(
        name=name, issuer=issuer, audiences=audiences, audience_claim=audience_claim, exact_audience=exact,
        jwks_uri=jwks_uri, ca_file=ca_file, allow_http=allow_http, accepted_typ=typ, required_claims=required,
        claim_rules=tuple(claim_rules), roles=roles, scopes=scopes, algorithms=algorithms,
        discovery_kind=METADATA[metadata], socket=socket, revocations=revocations,
    )


def load_file(path, problems):
    """Providers from a TOML file of `[providers.NAME]` tables; problems recorded, never raised."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        problems.add(path, f"cannot be read: {error.strerror}")
        return ()
    except tomllib.TOMLDecodeError as error:
        problems.add(path, f"is not valid TOML: {str(error)[:160]}")
        return ()
    return load_document(document, problems)


def load_document(document, problems):
    """Providers from the parsed document; checks that no two share an issuer."""
    unknown = sorted(set(document) - {"providers"})
    if unknown:
        problems.add("file", f"unknown top-level key(s) {', '.join(unknown)[:120]}")
    entries = document.get("providers")
    if not isinstance(entries, dict) or not 0 < len(entries) <= _MAX_PROVIDERS:
        problems.add("[providers]", f"must hold 1-{_MAX_PROVIDERS} provider tables")
        return ()
    providers = [provider for name, entry in entries.items()
                 if (provider := build(name, entry, problems)) is not None]
    issuers = [provider.issuer for provider in providers]
    for issuer in sorted({issuer for issuer in issuers if issuers.count(issuer) > 1}):
        # The token's iss picks the provider: two with one issuer would make that choice ambiguous.
        problems.add("[providers]", f"issuer {issuer[:80]!r} is configured twice")
    return tuple(providers)


class TrustedProviders:
    """The providers at run time, each with its Policy and key set; keyed by issuer for the Verifier."""

    def __init__(self, entries, unrevoked=frozenset()):
        # [(name, Policy, keys)]: keys is a StaticKeys, JwksSource or anything with get/len/refresh/run.
        self._entries = tuple(entries)
        self.issuers = {policy.issuer: (policy, keys) for _, policy, keys in self._entries}
        # Names of the providers whose tokens the revocation store does not speak for (`revocations = false`).
        self.unrevoked = frozenset(unrevoked)

    def __len__(self):
        return sum(len(keys) for _, _, keys in self._entries)

    def names(self):
        return [name for name, _, _ in self._entries]

    def key_sets(self):
        """(name, keys) of every provider, in the configured order."""
        return [(name, keys) for name, _, keys in self._entries]

    def on_retire(self, callback):
        """Call callback() whenever any provider's refresh drops a key."""
        for _, _, keys in self._entries:
            keys.on_retire(callback)

    def without_keys(self):
        """Names of the providers holding no key: their tokens are refused until keys arrive."""
        return [name for name, _, keys in self._entries if not len(keys)]

    async def refresh(self):
        await asyncio.gather(*(keys.refresh() for _, _, keys in self._entries))

    async def run(self, interval):
        await asyncio.gather(*(keys.run(interval) for _, _, keys in self._entries))
