"""The validator's ASGI application factory."""

import asyncio
import functools
import logging.config
import os
import time

import falcon
import falcon.asgi

from jwtgate.files import load_or_create_secret
from jwtgate.logs import logconfig_dict
from jwtgate.verdicts import VerdictCache
from validator.config import Settings, trusted_providers
from validator import metrics
from jwtgate.keys import JwksSource, StaticKeys
from validator.providers import TrustedProviders
from jwtgate.revocation import NoRevocations, SqliteRevocationStore, is_redis_url
from validator.assertion import AssertionSigner, load_or_create_key
from jwtgate.credentials import challenge
from jwtgate.dpop import ALGORITHMS, Nonces, ProofChecker
from validator.metadata import WELL_KNOWN, ResourceMetadata, is_issuer_url
from validator.proof_gate import ProofGate
from jwtgate.replay import MemoryReplayCache, RedisReplayCache, SqliteReplayCache
from validator.resources import AssertionKeys, Health, MetadataDocument, Ready, Verify
from validator.revocation import ProviderRevocations, RevocationFeed, RevocationSet
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


def make_keys(settings, provider):
    """The key source of one provider: one HS256 secret (the environment's provider only), its JWKS URL,
    or the jwks_uri its issuer's metadata names (OpenID Connect Discovery, else RFC 8414)."""
    if settings.hs256_secret is not None and not settings.providers:
        return StaticKeys(settings.hs256_secret, settings.hs256_kid)
    # The failure series exists from the start, so a rate() over it is 0, not absent.
    metrics.JWKS_FETCH_FAILURES.labels(provider=provider.name)
    fetch = functools.partial(metrics.jwks_fetch, provider=provider.name, ca_file=provider.ca_file,
                              allow_http=provider.allow_http)
    source = {"url": provider.jwks_uri} if provider.jwks_uri else {"issuer": provider.issuer,
                                                                     "discovery": provider.discovery_kind}
    return JwksSource(
        **source,
        unix_socket=provider.socket,
        timeout=settings.jwks_timeout_seconds,
        min_interval=settings.jwks_min_refresh_seconds,
        refresh_bounds=(settings.jwks_min_refresh_seconds, settings.jwks_refresh_seconds),
        max_staleness=settings.jwks_max_staleness_seconds or None,
        allow_http=provider.allow_http,
        fetch=fetch,
    )


def make_policy(settings, provider):
    """What a token of `provider` must satisfy besides its signature."""
    return Policy(
        issuer=provider.issuer,
        audiences=provider.audiences,
        accepted_typ=provider.accepted_typ,
        leeway_seconds=settings.leeway_seconds,
        audience_claim=provider.audience_claim,
        exact_audience=provider.exact_audience,
        required_claims=frozenset(provider.required_claims),
        claim_rules=provider.claim_rules,
        roles=provider.roles,
        scopes=provider.scopes,
        extra_claims=tuple(claim for claim, _ in settings.claim_headers if claim not in ("sub", "roles", "scope")),
        forward_claims=settings.forward_claims,
        provider=provider.name,
        algorithms=provider.algorithms,
    )


def make_providers(settings, keys=None):
    """Every provider with its policy and keys; `keys` (tests) replaces the key source of a single provider."""
    providers = trusted_providers(settings, keys_given=keys is not None)
    if keys is not None and len(providers) != 1:
        raise ValueError("keys= serves one provider only")
    return TrustedProviders(((provider.name, make_policy(settings, provider),
                              keys if keys is not None else make_keys(settings, provider)) for provider in providers),
                            unrevoked={provider.name for provider in providers if not provider.revocations})


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


def make_metadata(settings, providers):
    """The RFC 9728 metadata of the first of VALIDATOR_PUBLIC_ORIGINS, or None without one."""
    if not settings.resource_origin:
        return None
    servers = []
    for issuer, (policy, _) in providers.issuers.items():
        if is_issuer_url(issuer):
            servers.append(issuer)
        else:
            log.info("protected resource metadata leaves out provider %r: its issuer is not a URL (RFC 8414"
                     " section 2), so no client could find its metadata", policy.provider)
    # With a public origin, DPoP-bound tokens are accepted beside bearer ones, with proofs of these algorithms.
    return ResourceMetadata(settings.resource_origin, servers, scopes=settings.scopes_supported,
                            dpop_algorithms=ALGORITHMS)


def create_app(settings, *, keys=None, providers=None, revocations=None, assertions=None, replay=None,
               clock=time.time):
    """Build the app from settings and collaborators (tests pass their own keys or providers, revocations and clock)."""
    revocations = NoRevocations() if revocations is None else revocations
    trusted = providers if providers is not None else make_providers(settings, keys)
    stats = metrics.VerifyStats()
    verdicts = VerdictCache(settings.cache_size, settings.cache_max_ttl_seconds, timer=clock)
    # A verdict holds only while the key that verified it does: a key that leaves a set takes them all.
    trusted.on_retire(verdicts.clear)
    cache = metrics.CountedCache(verdicts, stats)
    # The providers of `revocations = false` skip the store: none of its entries are theirs.
    refusals = ProviderRevocations(revocations, trusted.unrevoked) if trusted.unrevoked else revocations
    verifier = Verifier(trusted.issuers, cache, refusals, clock)
    app = falcon.asgi.App(middleware=[_Background(trusted, revocations, settings.jwks_refresh_seconds)])
    metadata = make_metadata(settings, trusted)
    resource_metadata = metadata.url if metadata is not None else None
    app.add_route("/verify", Verify(verifier, stats, realm=settings.realm,
                                    max_token_bytes=settings.max_token_bytes, claim_headers=settings.claim_headers,
                                    allowed_origins=settings.allowed_origins,
                                    verdict_max_age=settings.verdict_max_age_seconds, assertions=assertions,
                                    dpop=make_dpop(settings, replay, clock), resource_metadata=resource_metadata,
                                    clock=clock))
    document = MetadataDocument(metadata)
    app.add_route(WELL_KNOWN, document)
    app.add_route(WELL_KNOWN + "/{path:path}", document)
    if assertions is not None:
        app.add_route("/assertion-jwks.json", AssertionKeys(assertions))
    app.add_route("/healthz", Health(trusted))
    app.add_route("/readyz", Ready(trusted, revocations))
    app.add_route("/metrics", metrics.Metrics(stats))
    app.add_middleware(metrics.VerifyMetrics(cache, trusted, stats))
    denial = challenge(settings.realm, "internal_error", resource_metadata=resource_metadata)

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
    if settings.revocation_db is None:
        log.warning("VALIDATOR_REVOCATION_DB is not set: revocation is off, a revoked or logged-out token"
                    " passes until its exp")
    if not settings.public_origins:
        log.warning("VALIDATOR_PUBLIC_ORIGINS is not set: every DPoP-bound token is refused (RFC 9449 section"
                    " 4.3: a proof's htu must name the gateway's public origin)")
        log.warning("VALIDATOR_PUBLIC_ORIGINS is not set: no protected resource metadata is served and 401"
                    " challenges name none (RFC 9728: the resource identifier is the gateway's public origin)")
    return create_app(settings, revocations=make_revocations(settings), assertions=make_assertions(settings))
