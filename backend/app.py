"""The sample backend: public and protected routes, no JWT code at all."""

import logging.config
import os

import falcon

from jwtgate.logs import logconfig_dict

log = logging.getLogger(__name__)


def _names(header):
    return [name for name in (header or "").split(",") if name]


class Public:
    """GET /api/public/: no identity needed."""

    def on_get(self, req, resp):
        resp.media = {"message": "Public route: No auth needed"}


class Protected:
    """Every path under /api/protected/, /api/admin/ and /api/orders/: echoes the identity Nginx passed."""

    def on_get(self, req, resp, rest=""):
        user_id = req.get_header("X-User-Id")
        if not user_id:
            # Reaching here without an identity means the gateway was bypassed
            # or misconfigured: refuse rather than serve anonymous data.
            raise falcon.HTTPUnauthorized(title="Missing gateway identity")
        resp.media = {
            "message": "Protected route: Hello user",
            "userId": user_id,
            "roles": _names(req.get_header("X-User-Roles")),
            "scopes": _names(req.get_header("X-User-Scopes")),
            "email": req.get_header("X-User-Email") or None,
            "tenant": req.get_header("X-User-Tenant") or None,
            "path": req.path,
        }

    on_post = on_put = on_patch = on_delete = on_get


class Health:
    """GET /healthz: liveness."""

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class RequestLog:
    """One JSON line per request that reaches the backend; tests read it to prove what got through."""

    def process_response(self, req, resp, resource, req_succeeded):
        log.info(
            "request",
            extra={"method": req.method, "path": req.path, "status": str(resp.status)[:3],
                   "user": req.get_header("X-User-Id")},
        )


def create_app():
    app = falcon.App(middleware=[RequestLog()])
    public, protected = Public(), Protected()
    app.add_route("/api/public", public)
    app.add_route("/api/public/", public)
    for prefix in ("/api/protected", "/api/admin", "/api/orders", "/api/tenant"):
        app.add_route(prefix, protected)
        app.add_route(prefix + "/{rest:path}", protected)
    app.add_route("/healthz", Health())
    return app


def get_app():
    """Entry point for gunicorn."""
    logging.config.dictConfig(logconfig_dict("backend", os.environ.get("BACKEND_LOG_LEVEL", "info")))
    return create_app()
