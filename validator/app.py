"""The validator's ASGI application factory."""

import logging.config
import os
import time

import falcon
import falcon.asgi

from jwtgate.logs import logconfig_dict
from validator.cache import VerdictCache
from validator.config import Settings
from validator.keys import JwksSource, StaticKeys
from validator.resources import Health, Verify, challenge
from validator.tokens import Policy
from validator.verifier import Verifier

log = logging.getLogger(__name__)


class _LoadKeysAtStartup:
    """Fetch the JWKS when a worker starts, so the first request does not pay for it."""

    def __init__(self, keys):
        self._keys = keys

    async def process_startup(self, scope, event):
        await self._keys.refresh()


def make_keys(settings):
    """The key source the settings ask for: a JWKS URL or one HS256 secret, never both."""
    if settings.hs256_secret is not None:
        return StaticKeys(settings.hs256_secret, settings.hs256_kid)
    return JwksSource(
        settings.jwks_url,
        unix_socket=settings.jwks_socket,
        timeout=settings.jwks_timeout_seconds,
        min_interval=settings.jwks_min_refresh_seconds,
    )


def create_app(settings, *, keys, clock=time.time):
    """Build the app from settings and collaborators (tests pass fakes for keys and clock)."""
    policy = Policy(
        issuer=settings.issuer,
        audience=settings.audience,
        accepted_typ=settings.accepted_typ,
        leeway_seconds=settings.leeway_seconds,
    )
    cache = VerdictCache(settings.cache_size, settings.cache_max_ttl_seconds, timer=clock)
    verifier = Verifier(keys, cache, policy, clock)
    app = falcon.asgi.App(middleware=[_LoadKeysAtStartup(keys)])
    app.add_route("/verify", Verify(verifier, keys, realm=settings.realm, max_token_bytes=settings.max_token_bytes))
    app.add_route("/healthz", Health(keys))
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
    return create_app(settings, keys=make_keys(settings))
