"""The Falcon application: create_app wires collaborators together, get_app reads the environment."""

import http
import json
import logging
import logging.config
import os
import time

import falcon

from auth_api.config import Settings
from auth_api.keys import KeyRing, start_rotation_schedule
from auth_api.access import AccessTokenChecker
from auth_api.dpop import TokenEndpointProofs
from auth_api.storage import UNAVAILABLE, open_failure_counters, open_revocations
from auth_api.limits import UNTHROTTLED, LockoutPolicy, LoginThrottle
from auth_api.metadata import JWKS_PATH, server_metadata
from auth_api.metrics import Metrics
from auth_api.resources import (
    DemoLogin,
    Health,
    Jwks,
    Login,
    Logout,
    Refresh,
    ServerMetadata,
)
from auth_api.sessions import Sessions
from auth_api.store import UserStore
from jwtgate.logs import logconfig_dict
from jwtgate.request_id import RequestIdMiddleware
from jwtgate.settings import ConfigError

logger = logging.getLogger(__name__)

# RFC 6749 §5.2 names a malformed request invalid_request; use that for every 400, ours or Falcon's.
_ERROR_CODES = {400: "invalid_request", 500: "internal_error"}


def serialize_error(req, resp, error):
    """Every error as {"error", "message"} JSON, whatever the client accepts."""
    if error.code is not None:
        # Only this package sets `code`, always with a description from a fixed text.
        code, message = error.code, error.description
    else:
        try:
            phrase = http.HTTPStatus(error.status_code).phrase
        except ValueError:
            phrase = "Error"
        code = _ERROR_CODES.get(error.status_code, phrase.lower().replace(" ", "_").replace("-", "_"))
        message = phrase
    resp.data = json.dumps({"error": code, "message": message}).encode()
    resp.content_type = falcon.MEDIA_JSON


def handle_unexpected(req, resp, error, params):
    # The JSON log formatter keeps only the exception type: its text may quote request data.
    logger.error("unhandled exception", exc_info=error, extra={"method": req.method, "path": req.path})
    raise falcon.HTTPInternalServerError()


def handle_unavailable(req, resp, error, params):
    # Redis or PostgreSQL is unreachable: refuse (a login without its lockout check, a logout whose
    # revocation reached no validator) rather than carry on without them.
    logger.error("backing service unavailable", extra={"error": type(error).__name__, "path": req.path})
    raise falcon.HTTPServiceUnavailable(code="auth_unavailable",
                                        description="The authentication service is temporarily unavailable",
                                        headers={"Retry-After": "5"})


def create_app(settings, *, store, keyring, revocations, clock, throttle=None, proofs=None):
    """The WSGI app serving login, refresh, logout, the JWKS, the server metadata and the health check."""
    sessions = Sessions(settings, store=store, revocations=revocations, clock=clock)
    # DPoP proofs at login and refresh (RFC 9449 section 5); the replay cache opens on first use.
    proofs = TokenEndpointProofs.open(settings, clock) if proofs is None else proofs
    app = falcon.App(middleware=[RequestIdMiddleware()])
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(UNAVAILABLE, handle_unavailable)
    # Without demo login the route has no GET responder, so GET answers 405 rather than a token.
    login = DemoLogin if settings.demo_login else Login
    app.add_route("/api/auth/login", login(settings, store=store, keyring=keyring, sessions=sessions, clock=clock,
                                           throttle=throttle or UNTHROTTLED, proofs=proofs))
    app.add_route("/api/auth/refresh",
                  Refresh(settings, store=store, keyring=keyring, sessions=sessions, clock=clock,
                                  proofs=proofs))
    app.add_route("/api/auth/logout", Logout(
        settings, checker=AccessTokenChecker(settings, keyring, clock=clock), sessions=sessions, proofs=proofs))
    app.add_route(JWKS_PATH, Jwks(keyring))
    try:
        path, document = server_metadata(settings.issuer)
    except ValueError as error:
        # Verifiers then need our JWKS URL configured: discovery starts from an issuer URL (RFC 8414 section 3).
        logger.info("authorization server metadata not served", extra={"setting": "AUTH_ISSUER", "reason": str(error)})
    else:
        app.add_route(path, ServerMetadata(document))
    app.add_route("/healthz", Health())
    # Not under /api/auth/, so the public gateway never proxies it; see jwtgate-metrics.conf.
    app.add_route("/metrics", Metrics())
    return app


def get_app(environ=None):
    """The app as gunicorn runs it: settings from the environment, the store and keys opened or created."""
    environ = os.environ if environ is None else environ
    try:
        settings = Settings.from_env(environ)
    except ConfigError as error:
        logging.config.dictConfig(logconfig_dict("auth_api"))
        logger.critical("invalid configuration", extra={"setting": ", ".join(name for name, _ in error.problems)})
        raise
    logging.config.dictConfig(logconfig_dict("auth_api", settings.log_level))
    if not settings.public_origins:
        logger.warning("AUTH_PUBLIC_ORIGINS is not set: every DPoP proof at login, refresh and logout is refused"
                       " (RFC 9449 section 4.3: a proof's htu must name this service's public origin)")
    store = UserStore.open(settings)
    keyring = KeyRing.open(settings)
    if settings.hs256_secret is None and settings.key_rotation_seconds:
        start_rotation_schedule(settings)
    if settings.demo_login:
        logger.warning(
            "DEMO LOGIN IS ON: GET /api/auth/login gives the demo user's token to anyone; never use in production",
            extra={"user": settings.demo_user, "setting": "AUTH_DEMO_LOGIN"},
        )
        if store.get_user(settings.demo_user) is None:
            logger.warning(
                "demo user missing: run `python -m auth_api users demo`", extra={"user": settings.demo_user}
            )
    logger.info(
        "auth_api ready",
        extra={"kid": keyring.active.kid, "keys": len(keyring.jwks()["keys"]), "pid": os.getpid()},
    )
    revocations = open_revocations(settings)
    # Failed logins are counted in the auth database (or Redis), so every worker, replica and restart
    # sees the same lockouts.
    throttle = LoginThrottle(open_failure_counters(settings, store), LockoutPolicy.from_settings(settings),
                             time.time)
    return create_app(settings, store=store, keyring=keyring, revocations=revocations, clock=time.time,
                      throttle=throttle)
