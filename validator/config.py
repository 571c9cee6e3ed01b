"""Validator settings, read once from VALIDATOR_* environment variables."""

import re
from dataclasses import dataclass, field

import os

from jwtgate.dpop import MIN_NONCE_SECONDS
from jwtgate.revocation import is_redis_url
from jwtgate.settings import ConfigError, EnvReader, data_dir
from validator.metadata import SCOPE_TOKEN
from validator.providers import PRESETS, ProblemList, build, load_file

_MAPPING = re.compile(r"([A-Za-z0-9_]{1,64}):(X-[A-Za-z0-9-]{1,64})")
# VALIDATOR_FORWARD_CLAIMS: the whole verified claim set, base64url JSON, for the backend.
CLAIMS_HEADER = "X-User-Claims"
DEFAULT_CLAIM_HEADERS = "sub:X-User-Id roles:X-User-Roles scope:X-User-Scopes email:X-User-Email tenant:X-User-Tenant"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_QUOTABLE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")
_MIN_HS256_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    """Everything the validator needs; tests build it directly."""

    # The one provider of the simple case: VALIDATOR_ISSUER, VALIDATOR_AUDIENCE (space-separated),
    # keys from VALIDATOR_JWKS_URL, VALIDATOR_HS256_SECRET or discovery on the issuer.
    issuer: str = "jwtgate"
    audience: str = "jwtgate-api"
    provider_name: str = "default"
    provider_preset: str = "generic"
    ca_file: str | None = None
    # Plain http:// to a host other than loopback (a JWKS inside a Compose or Kubernetes network).
    allow_http: bool = False
    # The metadata discovery reads: openid (OpenID Connect Discovery) or oauth (RFC 8414).
    discovery: str = "openid"
    # Several providers, from VALIDATOR_PROVIDERS_FILE; when set, the fields above are not used.
    providers: tuple = ()
    jwks_url: str | None = None
    jwks_socket: str | None = None
    hs256_secret: bytes | None = field(default=None, repr=False)
    hs256_kid: str = ""
    # None: the preset's.
    accepted_typ: tuple | None = None
    leeway_seconds: int = 30
    cache_size: int = 100_000
    cache_max_ttl_seconds: int = 300
    verdict_max_age_seconds: int = 0
    max_token_bytes: int = 8000
    jwks_min_refresh_seconds: int = 5
    jwks_timeout_seconds: int = 2
    jwks_refresh_seconds: int = 60
    # How long a provider's last good key set is used while its JWKS cannot be fetched (0: for ever).
    jwks_max_staleness_seconds: int = 86_400
    revocation_db: str | None = None
    revocation_poll_ms: int = 200
    revocation_max_staleness_seconds: int = 30
    realm: str = "jwtgate"
    log_level: str = "info"
    allowed_origins: frozenset = frozenset()
    # RFC 9449 section 4.3: the origins clients reach the gateway at, which a DPoP proof's htu must name.
    # Empty: every DPoP-bound token is refused (the client's Host is never trusted instead).
    public_origins: frozenset = frozenset()
    # RFC 9728: the origin of the gateway's resource identifiers, the first of VALIDATOR_PUBLIC_ORIGINS.
    # Empty: no protected resource metadata is served, and 401 challenges name none.
    resource_origin: str = ""
    # RFC 9728 scopes_supported: the scopes clients may ask for (none: the member is left out).
    scopes_supported: tuple = ()
    assertion_audience: str = ""
    assertion_ttl_seconds: int = 30
    assertion_key_dir: str = ""
    # DPoP (RFC 9449): how far a proof's iat may be from now, and the jti replay cache (None: in memory).
    dpop_iat_window_seconds: int = 60
    dpop_replay_db: str | None = None
    # RFC 9449 section 9 server nonces: how long each lasts (0: none asked for), and the secret they are
    # made with (None: the key file in the data directory, made on first use).
    dpop_nonce_seconds: int = 0
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)
    dpop_nonce_key_file: str = ""
    claim_headers: tuple = tuple(tuple(pair.split(":")) for pair in DEFAULT_CLAIM_HEADERS.split())
    # The whole verified claim set in X-User-Claims, besides the mapped claims.
    forward_claims: bool = False

    @classmethod
    def from_env(cls, environ):
        env = EnvReader(environ, "VALIDATOR_")
        jwks_url = env.text("JWKS_URL", None) or None
        secret = env.secret("HS256_SECRET", min_bytes=_MIN_HS256_SECRET_BYTES)
        if jwks_url and secret is not None:
            env.problem("HS256_SECRET", "set either it or VALIDATOR_JWKS_URL, never both (no mixed key sets)")
        providers_file = env.text("PROVIDERS_FILE", "")
        providers = ()
        if providers_file:
            for key in ("ISSUER", "AUDIENCE", "JWKS_URL", "HS256_SECRET", "PROVIDER_NAME", "PROVIDER_PRESET",
                        "ACCEPTED_TYP", "CA_FILE", "ALLOW_HTTP", "DISCOVERY", "JWKS_SOCKET"):
                if env.name(key) in environ:
                    env.problem(key, "set the provider in VALIDATOR_PROVIDERS_FILE instead (not both)")
            problems = ProblemList(env.name("PROVIDERS_FILE"))
            providers = load_file(providers_file, problems)
            env.problems.extend(problems.items)
        # No default feed: a validator beside someone else's provider has none, and one that waited for a
        # file nobody writes would refuse every token as revocation_unavailable.
        revocation_db = env.text("REVOCATION_DB", "")
        realm = env.text("REALM", "jwtgate")
        if not _QUOTABLE.fullmatch(realm):
            env.problem("REALM", "must be 1-64 printable ASCII characters without quotes or backslashes")
        claim_headers = []
        for pair in env.text("CLAIM_HEADERS", DEFAULT_CLAIM_HEADERS).split():
            match = _MAPPING.fullmatch(pair)
            if match is None:
                env.problem("CLAIM_HEADERS", f"{pair[:40]!r} is not claim:X-Header-Name")
            else:
                claim_headers.append((match.group(1), match.group(2)))
        if len({header.lower() for _, header in claim_headers}) != len(claim_headers):
            env.problem("CLAIM_HEADERS", "names a header twice")
        if any(header.lower() == CLAIMS_HEADER.lower() for _, header in claim_headers):
            env.problem("CLAIM_HEADERS", f"names {CLAIMS_HEADER}, which VALIDATOR_FORWARD_CLAIMS uses")
        # Origins, besides the gateway's own, whose cookie-authenticated writes are accepted.
        allowed_origins = env.text("ALLOWED_ORIGINS", "").split()
        for origin in allowed_origins:
            if not _ORIGIN.fullmatch(origin):
                env.problem("ALLOWED_ORIGINS", f"{origin[:60]!r} is not scheme://host[:port]")
        scopes_supported = tuple(dict.fromkeys(env.text("SCOPES_SUPPORTED", "").split()))
        for scope in scopes_supported:
            if not SCOPE_TOKEN.fullmatch(scope):
                env.problem("SCOPES_SUPPORTED", f"{scope[:40]!r} is not a scope (RFC 6749 section 3.3)")
        accepted_typ = env.text("ACCEPTED_TYP", None)
        if accepted_typ is not None:
            accepted_typ = tuple(accepted_typ.lower().split())
            if not accepted_typ:
                env.problem("ACCEPTED_TYP", "must name at least one token type, e.g. at+jwt")
        settings = cls(
            issuer=env.text("ISSUER", "jwtgate"),
            audience=env.text("AUDIENCE", "jwtgate-api"),
            provider_name=env.text("PROVIDER_NAME", "default", max_length=32),
            provider_preset=env.text("PROVIDER_PRESET", "generic", choices=set(PRESETS)),
            ca_file=env.text("CA_FILE", None) or None,
            allow_http=env.flag("ALLOW_HTTP", False),
            discovery=env.text("DISCOVERY", "openid", choices={"openid", "oauth"}),
            providers=providers,
            jwks_url=jwks_url,
            jwks_socket=env.text("JWKS_SOCKET", None) or None,
            hs256_secret=secret,
            hs256_kid=env.text("HS256_KID", "", max_length=128),
            accepted_typ=accepted_typ,
            leeway_seconds=env.integer("LEEWAY_SECONDS", 30, minimum=0, maximum=300),
            cache_size=env.integer("CACHE_SIZE", 100_000, minimum=0, maximum=10_000_000),
            cache_max_ttl_seconds=env.integer("CACHE_MAX_TTL_SECONDS", 300, minimum=0, maximum=86_400),
            # Cache-Control max-age on allowed verdicts, for the optional Nginx micro-cache: a few seconds at most.
            verdict_max_age_seconds=env.integer("VERDICT_MAX_AGE_SECONDS", 0, minimum=0, maximum=10),
            # Other providers' tokens grow with groups and permissions (Entra, Auth0): 8000 is what fits, with
            # `Authorization: Bearer `, in the 8 KiB header line Nginx and gunicorn accept by default.
            max_token_bytes=env.integer("MAX_TOKEN_BYTES", 8000, minimum=256, maximum=16_384),
            jwks_min_refresh_seconds=env.integer("JWKS_MIN_REFRESH_SECONDS", 5, minimum=1, maximum=3600),
            jwks_timeout_seconds=env.integer("JWKS_TIMEOUT_SECONDS", 2, minimum=1, maximum=30),
            jwks_refresh_seconds=env.integer("JWKS_REFRESH_SECONDS", 60, minimum=1, maximum=86_400),
            jwks_max_staleness_seconds=env.integer("JWKS_MAX_STALENESS_SECONDS", 86_400, minimum=0,
                                                   maximum=30 * 86_400),
            revocation_db=None if revocation_db.lower() in ("", "none") else revocation_db,
            revocation_poll_ms=env.integer("REVOCATION_POLL_MS", 200, minimum=20, maximum=5000),
            revocation_max_staleness_seconds=env.integer("REVOCATION_MAX_STALENESS_SECONDS", 30, minimum=1,
                                                         maximum=3600),
            realm=realm,
            log_level=env.text("LOG_LEVEL", "info", choices={"debug", "info", "warning", "error"}),
            claim_headers=tuple(claim_headers),
            forward_claims=env.flag("FORWARD_CLAIMS", False),
            allowed_origins=frozenset(allowed_origins),
            public_origins=env.origins("PUBLIC_ORIGINS"),
            resource_origin=next(iter(env.text("PUBLIC_ORIGINS", "").split()), ""),
            scopes_supported=scopes_supported,
            assertion_audience=env.text("ASSERTION_AUDIENCE", "", max_length=256),
            assertion_ttl_seconds=env.integer("ASSERTION_TTL_SECONDS", 30, minimum=5, maximum=300),
            assertion_key_dir=env.text("ASSERTION_KEY_DIR", os.path.join(data_dir(environ), "assertion")),
            dpop_iat_window_seconds=env.integer("DPOP_IAT_WINDOW_SECONDS", 60, minimum=1, maximum=300),
            dpop_replay_db=env.text("DPOP_REPLAY_DB", os.path.join(data_dir(environ), "dpop-replay.db")),
            dpop_nonce_seconds=env.off_or_integer("DPOP_NONCE_SECONDS", minimum=MIN_NONCE_SECONDS, maximum=3600),
            dpop_nonce_secret=env.secret("DPOP_NONCE_SECRET", min_bytes=_MIN_HS256_SECRET_BYTES),
            dpop_nonce_key_file=os.path.join(data_dir(environ), "dpop-nonce.key"),
        )
        if not providers_file:
            problems = ProblemList(env.name("ISSUER"), _SINGLE_FIELDS)
            single_provider(settings, problems)
            env.problems.extend(item for item in problems.items if item not in env.problems)
        # Redis is an optional extra: a store that names it needs its client installed.
        for key, value in (("REVOCATION_DB", settings.revocation_db), ("DPOP_REPLAY_DB", settings.dpop_replay_db)):
            if is_redis_url(value):
                env.needs_extra(key, "redis", "redis")
        env.finish()
        return settings


# The setting behind each field of the one provider built from the environment, for start-up messages.
_SINGLE_FIELDS = {
    "issuer": "VALIDATOR_ISSUER", "audiences": "VALIDATOR_AUDIENCE", "jwks_uri": "VALIDATOR_JWKS_URL",
    "accepted_typ": "VALIDATOR_ACCEPTED_TYP", "preset": "VALIDATOR_PROVIDER_PRESET", "ca_file": "VALIDATOR_CA_FILE",
    "allow_http": "VALIDATOR_ALLOW_HTTP", "metadata": "VALIDATOR_DISCOVERY", "socket": "VALIDATOR_JWKS_SOCKET",
}


def single_provider(settings, problems, keys_given=False):
    """The provider VALIDATOR_* variables describe, or None with its problems recorded.

    `keys_given`: the caller holds the keys (a shared secret, or a test's), so nothing is fetched.
    """
    own_keys = keys_given or settings.hs256_secret is not None
    entry = {"preset": settings.provider_preset, "issuer": settings.issuer, "audiences": settings.audience.split()}
    if settings.jwks_url and not own_keys:
        entry["jwks_uri"] = settings.jwks_url
    if settings.accepted_typ is not None:
        entry["accepted_typ"] = list(settings.accepted_typ)
    if settings.ca_file:
        entry["ca_file"] = settings.ca_file
    if settings.allow_http:
        entry["allow_http"] = True
    if settings.jwks_socket:
        entry["socket"] = settings.jwks_socket
    entry["metadata"] = settings.discovery
    return build(settings.provider_name, entry, problems, own_keys=own_keys)


def trusted_providers(settings, keys_given=False):
    """Every provider the settings name: the providers file's, or the one of VALIDATOR_* variables."""
    if settings.providers:
        return settings.providers
    problems = ProblemList("VALIDATOR_ISSUER", _SINGLE_FIELDS)
    provider = single_provider(settings, problems, keys_given)
    if provider is None:
        raise ConfigError(problems.items)
    return (provider,)
