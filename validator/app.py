"""The validator's ASGI application factory."""

import asyncio
import logging.config
import os
import time

import falcon
import falcon.asgi

from jwtgate.files import load_or_create_secret
from jwtgate.logs import logconfig_dict
from jwtgate.verdicts import VerdictCache
from validator.config import Settings
from validator import metrics
from jwtgate.keys import JwksSource, StaticKeys
from jwtgate.revocation import NoRevocations, SqliteRevocationStore, is_redis_url
from validator.assertion import AssertionSigner, load_or_create_key
from jwtgate.credentials import challenge
from jwtgate.dpop import Nonces, ProofChecker
from validator.proof_gate import ProofGate
from jwtgate.replay import MemoryReplayCache, RedisReplayCache, SqliteReplayCache
from validator.resources import AssertionKeys, Health, Ready, Verify
from validator.revocation import RevocationFeed, RevocationSet
from jwtgate.claims import Policy
from jwtgate.verifier import Verifier

log = logging.getLogger(__name__)


class _Background:
    """Per worker: load keys and revocations before the first request, then keep both fresh."""

    def __init__(self, keys, revocations, jwks_refresh_seconds):
        self._keys = keys
        self._revocations = revocations
        self._jwks_refresh_seconds = jwks_refresh_seconds
        self._tasks = []

    async def process_startup(self, scope, event):
        await self._keys.refresh()
        await self._revocations.sync()
        self._tasks = [
            asyncio.create_task(self._revocations.run()),
            asyncio.create_task(self._keys.run(self._jwks_refresh_seconds)),
        ]

    async def process_shutdown(self, scope, event):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def make_keys(settings):
    """The key source the settings ask for: a JWKS URL or one HS256 secret, never both."""
    if settings.hs256_secret is not None:
        return StaticKeys(settings.hs256_secret, settings.hs256_kid)
    return JwksSource(
        settings.jwks_url,
        unix_socket=settings.jwks_socket,
        timeout=settings.jwks_timeout_seconds,
        min_interval=settings.jwks_min_refresh_seconds,
        fetch=metrics.jwks_fetch,
    )


def make_revocations(settings):
    """The revocation feed the settings ask for: SQLite file, Redis URL, or NoRevocations for `none`."""
    if settings.revocation_db is None:
        return NoRevocations()
    if is_redis_url(settings.revocation_db):
        # Imported only here: the Redis client adds to every worker's memory.
        from jwtgate.redis_revocation import RedisRevocationStore
        from validator.redis_feed import PushedRevocationFeed

        return PushedRevocationFeed(
            RedisRevocationStore(settings.revocation_db),
            RevocationSet(),
            url=settings.revocation_db,
            interval=settings.revocation_poll_ms / 1000,
            max_staleness=settings.revocation_max_staleness_seconds,
        )
    return RevocationFeed(
        SqliteRevocationStore(settings.revocation_db),
        RevocationSet(),
        interval=settings.revocation_poll_ms / 1000,
        max_staleness=settings.revocation_max_staleness_seconds,
    )


def make_assertions(settings, clock=time.time):
    """The assertion signer when VALIDATOR_ASSERTION_AUDIENCE is set, else None."""
    if not settings.assertion_audience:
        return None
    return AssertionSigner(load_or_create_key(settings.assertion_key_dir), audience=settings.assertion_audience,
                           ttl=settings.assertion_ttl_seconds, clock=clock)


def make_dpop(settings, replay=None, clock=time.time):
    """The DPoP proof gate: its replay cache is the file every worker shares, or Redis, which every
    validator host shares (in memory without either)."""
    if replay is None:
        if is_redis_url(settings.dpop_replay_db):
            replay = RedisReplayCache(settings.dpop_replay_db)
        elif settings.dpop_replay_db:
            replay = SqliteReplayCache(settings.dpop_replay_db, clock)
        else:
            replay = MemoryReplayCache(clock)
    return ProofGate(ProofChecker(iat_window=settings.dpop_iat_window_seconds, clock=clock), replay,
                     make_nonces(settings, clock), settings.public_origins)


def make_nonces(settings, clock=time.time):
    """RFC 9449 section 9 nonces when VALIDATOR_DPOP_NONCE_SECONDS asks for them, else None."""
    if not settings.dpop_nonce_seconds:
        return None
    secret = settings.dpop_nonce_secret or load_or_create_secret(settings.dpop_nonce_key_file)
    return Nonces(secret, settings.dpop_nonce_seconds, clock)


def create_app(settings, *, keys, revocations=None, assertions=None, replay=None, clock=time.time):
    """Build the app from settings and collaborators (tests pass their own keys, revocations and clock)."""
    revocations = NoRevocations() if revocations is None else revocations
    policy = Policy(
        issuer=settings.issuer,
        audience=settings.audience,
        accepted_typ=settings.accepted_typ,
        leeway_seconds=settings.leeway_seconds,
        extra_claims=tuple(claim for claim, _ in settings.claim_headers if claim not in ("sub", "roles", "scope")),
        forward_claims=settings.forward_claims,
    )
    stats = metrics.VerifyStats()
    verdicts = VerdictCache(settings.cache_size, settings.cache_max_ttl_seconds, timer=clock)
    # A verdict holds only while the key that verified it does: a key that leaves the set takes them all.
    keys.on_retire(verdicts.clear)
    cache = metrics.CountedCache(verdicts, stats)
    verifier = Verifier(keys, cache, policy, revocations, clock)
    app = falcon.asgi.App(middleware=[_Background(keys, revocations, settings.jwks_refresh_seconds)])
    app.add_route("/verify", Verify(verifier, keys, stats, realm=settings.realm,
                                    max_token_bytes=settings.max_token_bytes, claim_headers=settings.claim_headers,
                                    allowed_origins=settings.allowed_origins,
                                    verdict_max_age=settings.verdict_max_age_seconds, assertions=assertions,
                                    dpop=make_dpop(settings, replay, clock), clock=clock))
    if assertions is not None:
        app.add_route("/assertion-jwks.json", AssertionKeys(assertions))
    app.add_route("/healthz", Health(keys))
    app.add_route("/readyz", Ready(keys, revocations))
    app.add_route("/metrics", metrics.Metrics(stats))
    app.add_middleware(metrics.VerifyMetrics(cache, keys, stats))
    denial = challenge(settings.realm, "internal_error")

    async def fail_closed(req, resp, error, params):
        log.exception("unhandled error")
        resp.status = falcon.HTTP_401
        resp.set_header("WWW-Authenticate", denial)
        resp.set_header("X-Auth-Error", "internal_error")

    app.add_error_handler(Exception, fail_closed)
    return app


def get_app():
    """Entry point for gunicorn: settings from the environment."""
    settings = Settings.from_env(os.environ)
    logging.config.dictConfig(logconfig_dict("validator", settings.log_level))
    if not settings.public_origins:
        log.warning("VALIDATOR_PUBLIC_ORIGINS is not set: every DPoP-bound token is refused (RFC 9449 section"
                    " 4.3: a proof's htu must name the gateway's public origin)")
    return create_app(settings, keys=make_keys(settings), revocations=make_revocations(settings),
                      assertions=make_assertions(settings))
