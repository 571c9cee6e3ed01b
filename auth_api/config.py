"""auth_api settings, read once from the environment."""

import os
from dataclasses import dataclass, field

from auth_api.store import USERNAME
from jwtgate import settings as env
from jwtgate.dpop import MIN_NONCE_SECONDS
from jwtgate.revocation import is_redis_url

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_HS256_SECRET_BYTES = 32

LOG_LEVELS = frozenset({"debug", "info", "warning", "error"})


@dataclass(frozen=True)
class Settings:
    """Everything auth_api reads from the environment; build it directly in tests."""

    data_dir: str
    issuer: str = "jwtgate"
    audience: str = "jwtgate-api"
    access_token_ttl_seconds: int = 900
    demo_login: bool = False
    demo_user: str = "demo"
    hs256_secret: bytes | None = field(default=None, repr=False)
    max_body_bytes: int = 4096
    log_level: str = "info"
    refresh_token_ttl_seconds: int = 14 * 86400
    key_rotation_seconds: int = 30 * 86400
    key_activation_delay_seconds: int = 120
    revocation_margin_seconds: int = 300
    lockout_threshold: int = 5
    lockout_base_seconds: int = 30
    lockout_max_seconds: int = 900
    cookie_secure: bool = True
    allowed_origins: frozenset = frozenset()
    # RFC 9449 section 4.3: the origins clients reach the auth API at, which a DPoP proof's htu must
    # name. Empty: every DPoP proof is refused (the client's Host is never trusted instead).
    public_origins: frozenset = frozenset()
    # Scaling out (README): empty means the SQLite files in data_dir.
    database_url: str = ""
    # The PostgreSQL password, kept out of the URL so it can come from a file (a Compose or
    # Kubernetes secret): AUTH_DATABASE_PASSWORD_FILE.
    database_password: bytes | None = field(default=None, repr=False)
    revocation_store: str = ""
    lockout_store: str = ""
    # Login and refresh DPoP proofs' replay cache: empty, <data_dir>/dpop-replay-auth.db; or a redis:// URL.
    dpop_replay_store: str = ""
    # RFC 9449 section 8 nonces at login and refresh: how long each lasts (0: none asked for), and the
    # secret they are made with (None: <data_dir>/dpop-nonce-auth.key, made on first use).
    dpop_nonce_seconds: int = 0
    dpop_nonce_secret: bytes | None = field(default=None, repr=False)

    @property
    def revocation_db(self):
        """Where revocations go: a SQLite file (default <data_dir>/revocations.db) or a redis:// URL."""
        return self.revocation_store or os.path.join(self.data_dir, "revocations.db")

    @property
    def algorithm(self):
        return "HS256" if self.hs256_secret is not None else "RS256"

    @classmethod
    def from_env(cls, environ):
        """Settings from an environment mapping; raises ConfigError naming every bad setting."""
        reader = env.EnvReader(environ, "AUTH_")
        issuer = reader.text("ISSUER", "jwtgate")
        audience = reader.text("AUDIENCE", "jwtgate-api")
        ttl = reader.integer("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=60, maximum=86400)
        demo_login = reader.flag("DEMO_LOGIN", False)
        demo_user = reader.text("DEMO_USER", "demo")
        secret = reader.secret("HS256_SECRET", min_bytes=MIN_HS256_SECRET_BYTES)
        max_body_bytes = reader.integer("MAX_BODY_BYTES", 4096, minimum=256, maximum=1 << 20)
        log_level = reader.text("LOG_LEVEL", "info", choices=LOG_LEVELS)
        refresh_ttl = reader.integer("REFRESH_TOKEN_TTL_SECONDS", 14 * 86400, minimum=300, maximum=90 * 86400)
        # 0 turns the automatic schedule off; `python -m auth_api keys rotate` still works.
        rotation = reader.integer("KEY_ROTATION_SECONDS", 30 * 86400, minimum=0, maximum=365 * 86400)
        activation_delay = reader.integer("KEY_ACTIVATION_DELAY_SECONDS", 120, minimum=0, maximum=86400)
        # Per-account backoff (auth_api.limits); AUTH_LOCKOUT_THRESHOLD=0 turns it off.
        lockout_threshold = reader.integer("LOCKOUT_THRESHOLD", 5, minimum=0, maximum=100)
        lockout_base = reader.integer("LOCKOUT_BASE_SECONDS", 30, minimum=1, maximum=86400)
        lockout_max = reader.integer("LOCKOUT_MAX_SECONDS", 900, minimum=1, maximum=86400)
        # Browser login cookies carry `Secure` unless turned off for plain http (make run does).
        cookie_secure = reader.flag("COOKIE_SECURE", True)
        # Origins, besides the gateway's own, whose cookie logins, refreshes and logouts are accepted.
        allowed_origins = reader.origins("ALLOWED_ORIGINS")
        public_origins = reader.origins("PUBLIC_ORIGINS")
        # Scaling out: the user store in PostgreSQL, revocations and lockout counters in Redis.
        database_url = reader.text("DATABASE_URL", "")
        if database_url and not database_url.startswith(("postgresql://", "postgres://")):
            reader.problem("DATABASE_URL", "must be a postgresql:// URL (empty: SQLite in the data directory)")
        database_password = reader.secret("DATABASE_PASSWORD")
        if database_password is not None and not database_url:
            reader.problem("DATABASE_PASSWORD", "needs AUTH_DATABASE_URL (SQLite has no password)")
        revocation_store = reader.text("REVOCATION_DB", "")
        lockout_store = reader.text("LOCKOUT_DB", "")
        if lockout_store and not lockout_store.startswith(("redis://", "rediss://", "unix://")):
            reader.problem("LOCKOUT_DB", "must be a redis:// URL (empty: the auth database)")
        dpop_replay_store = reader.text("DPOP_REPLAY_DB", "")
        if dpop_replay_store and not is_redis_url(dpop_replay_store):
            reader.problem("DPOP_REPLAY_DB", "must be a redis:// URL (empty: SQLite in the data directory)")
        # Redis and PostgreSQL are optional extras: a setting that names one needs its client installed.
        if database_url:
            reader.needs_extra("DATABASE_URL", "postgres", "psycopg_pool")
        for key, value in (("REVOCATION_DB", revocation_store), ("LOCKOUT_DB", lockout_store),
                           ("DPOP_REPLAY_DB", dpop_replay_store)):
            if is_redis_url(value):
                reader.needs_extra(key, "redis", "redis")
        nonce_seconds = reader.off_or_integer("DPOP_NONCE_SECONDS", minimum=MIN_NONCE_SECONDS, maximum=3600)
        nonce_secret = reader.secret("DPOP_NONCE_SECRET", min_bytes=MIN_HS256_SECRET_BYTES)
        if lockout_base > lockout_max:
            reader.problem("LOCKOUT_MAX_SECONDS", "must be at least AUTH_LOCKOUT_BASE_SECONDS")
        if rotation and rotation <= activation_delay:
            reader.problem("KEY_ROTATION_SECONDS", "must be 0 or longer than AUTH_KEY_ACTIVATION_DELAY_SECONDS")

        for key, value in (("ISSUER", issuer), ("AUDIENCE", audience)):
            if not value:
                reader.problem(key, "must not be empty")
        if not USERNAME.fullmatch(demo_user):
            reader.problem("DEMO_USER", "must be 1 to 64 of A-Z a-z 0-9 . _ @ -")
        reader.finish()

        return cls(
            data_dir=env.data_dir(environ),
            issuer=issuer,
            audience=audience,
            access_token_ttl_seconds=ttl,
            demo_login=demo_login,
            demo_user=demo_user,
            hs256_secret=secret,
            max_body_bytes=max_body_bytes,
            log_level=log_level,
            refresh_token_ttl_seconds=refresh_ttl,
            key_rotation_seconds=rotation,
            key_activation_delay_seconds=activation_delay,
            lockout_threshold=lockout_threshold,
            lockout_base_seconds=lockout_base,
            lockout_max_seconds=lockout_max,
            cookie_secure=cookie_secure,
            allowed_origins=allowed_origins,
            public_origins=public_origins,
            database_url=database_url,
            database_password=database_password,
            revocation_store=revocation_store,
            lockout_store=lockout_store,
            dpop_replay_store=dpop_replay_store,
            dpop_nonce_seconds=nonce_seconds,
            dpop_nonce_secret=nonce_secret,
        )
