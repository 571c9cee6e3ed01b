"""The sample backend: public and protected routes trusting the identity headers Nginx sets."""

import base64
import json
import logging.config
import os

import falcon

from backend.assertion import AssertionChecker, AssertionRejected
from backend.config import Settings
from jwtgate.logs import logconfig_dict
from jwtgate.request_id import RequestIdMiddleware

log = logging.getLogger(__name__)


def _names(header):
    return [name for name in (header or "").split(",") if name]


def _claims(header):
    """The verified claim set the validator forwards (VALIDATOR_FORWARD_CLAIMS): base64url JSON, or None."""
    if not header:
        return None
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))


class Public:
    """GET /api/public/: no identity needed."""

    def on_get(self, req, resp):
        resp.media = {"message": "Public route: No auth needed"}

    # RFC 9110 section 9.3.2: HEAD wherever GET, with GET's headers (Falcon sends no body).
    on_head = on_get


class Protected:
    """Every path under the protected prefixes: echoes the identity Nginx passed."""

    def __init__(self, assertions=None):
        self._assertions = assertions

    def on_get(self, req, resp, rest=""):
        user_id = req.get_header("X-User-Id")
        if not user_id:
            # Reaching here without an identity means the gateway was bypassed
            # or misconfigured: refuse rather than serve anonymous data.
            raise falcon.HTTPUnauthorized(title="Missing gateway identity")
        if self._assertions is not None:
            try:
                self._assertions.check(req.get_header("X-Jwtgate-Assertion"), method=req.method, path=req.path,
                                       user_id=user_id)
            except AssertionRejected as rejected:
                log.warning("assertion rejected", extra={"reason": str(rejected), "path": req.path})
                raise falcon.HTTPUnauthorized(title="Missing or invalid gateway assertion") from None
        # Read the whole body: closing the connection on an unread body makes Nginx,
        # still sending it, answer 502.
        body = req.bounded_stream.read()
        resp.media = {
            "message": "Protected route: Hello user",
            "bodyBytes": len(body),
            "userId": user_id,
            "roles": _names(req.get_header("X-User-Roles")),
            "scopes": _names(req.get_header("X-User-Scopes")),
            "email": req.get_header("X-User-Email") or None,
            "tenant": req.get_header("X-User-Tenant") or None,
            "claims": _claims(req.get_header("X-User-Claims")),
            "path": req.path,
        }

    on_head = on_post = on_put = on_patch = on_delete = on_get


class Health:
    """GET /healthz: liveness."""

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}

    on_head = on_get


class RequestLog:
    """One JSON line per request that reaches the backend; tests read it to prove what got through."""

    def process_response(self, req, resp, resource, req_succeeded):
        log.info(
            "request",
            extra={"method": req.method, "path": req.path, "status": str(resp.status)[:3],
                   "user": req.get_header("X-User-Id")},
        )


def create_app(assertions=None):
    # RequestIdMiddleware first: its process_response, which forgets the id, runs last.
    app = falcon.App(middleware=[RequestIdMiddleware(), RequestLog()])
    public, protected = Public(), Protected(assertions)
    app.add_route("/api/public", public)
    app.add_route("/api/public/", public)
    for prefix in ("/api/protected", "/api/admin", "/api/orders", "/api/tenant", "/api/staff"):
        app.add_route(prefix, protected)
        app.add_route(prefix + "/{rest:path}", protected)
    app.add_route("/healthz", Health())
    return app


def get_app():
    """Entry point for gunicorn."""
    settings = Settings.from_env(os.environ)
    logging.config.dictConfig(logconfig_dict("backend", settings.log_level))
    assertions = None
    if settings.assertion_audience:
        assertions = AssertionChecker(settings.assertion_jwks_file, settings.assertion_audience)
    return create_app(assertions)
