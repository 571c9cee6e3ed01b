"""HTTP resources: login, the demo login, the JWKS and the health check."""

import json
import logging

import falcon

from auth_api import passwords
from auth_api.store import valid_username
from auth_api.tokens import mint_access_token
from jwtgate.logs import fingerprint

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Invalid username or password"


def _invalid_request(message):
    return falcon.HTTPBadRequest(code="invalid_request", description=message)


def read_json_body(req, max_bytes):
    """The request's JSON body, refusing oversized, non-JSON and unparsable bodies with 413, 415, 400."""
    too_large = falcon.HTTPContentTooLarge(
        code="payload_too_large", description=f"The request body must be at most {max_bytes} bytes"
    )
    if req.content_length is not None and req.content_length > max_bytes:
        raise too_large
    media_type = (req.content_type or "").partition(";")[0].strip().lower()
    if media_type != falcon.MEDIA_JSON:
        raise falcon.HTTPUnsupportedMediaType(
            code="unsupported_media_type", description="The request body must be application/json"
        )
    if req.content_length is None:
        # Chunked: bounded_stream would read nothing. Gunicorn's input ends at the last chunk, and with
        # neither header the body is empty (RFC 9112 §6.3); one byte past the limit shows it is over.
        raw = req.stream.read(max_bytes + 1)
    else:
        raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        # RecursionError: a few thousand nested brackets fit under the size limit.
        raise _invalid_request("The request body is not valid JSON") from None


class LoginResource:
    """POST /api/auth/login: a username and password in, an access token out."""

    def __init__(self, settings, *, store, keyring, clock):
        self._settings = settings
        self._store = store
        self._keyring = keyring
        self._clock = clock

    def on_post(self, req, resp):
        body = read_json_body(req, self._settings.max_body_bytes)
        if not isinstance(body, dict):
            raise _invalid_request("The request body must be a JSON object")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise _invalid_request("username and password are required and must be strings")

        user = self._store.get_user(username)
        if user is None:
            passwords.verify_dummy(password)
            raise self._denied(username, "unknown_user")
        # The hash is checked even for a disabled user, so the answer's timing says nothing about the account.
        if not passwords.verify(user.password_hash, password):
            raise self._denied(username, "wrong_password")
        if user.disabled:
            raise self._denied(username, "disabled")
        self._issue(resp, user)

    def _denied(self, username, reason):
        logger.info(
            "login",
            extra={"user": username if valid_username(username) else None, "result": "denied", "reason": reason},
        )
        # No WWW-Authenticate challenge: the credentials travel in the body, which no HTTP auth scheme describes.
        return falcon.HTTPUnauthorized(code="invalid_credentials", description=INVALID_CREDENTIALS)

    def _issue(self, resp, user, reason=None):
        token, claims = mint_access_token(
            self._keyring, self._settings, subject=user.username, roles=user.roles, scope=user.scope, now=self._clock
        )
        logger.info(
            "login",
            extra={
                "user": user.username,
                "result": "ok",
                "reason": reason,
                "kid": self._keyring.active.kid,
                "token_fp": fingerprint(token),
            },
        )
        ttl = claims["exp"] - claims["iat"]
        # `token` repeats access_token for clients of the original design, which read that name.
        resp.media = {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "token": token}
        # RFC 6749 §5.1: a response carrying a token must not be stored by any cache.
        resp.cache_control = ["no-store"]
        resp.set_header("Pragma", "no-cache")


class DemoLoginResource(LoginResource):
    """LoginResource plus GET, which hands the demo user's token to anyone: AUTH_DEMO_LOGIN only."""

    def on_get(self, req, resp):
        user = self._store.get_user(self._settings.demo_user)
        if user is None or user.disabled:
            logger.warning(
                "login", extra={"user": self._settings.demo_user, "result": "denied", "reason": "demo_user_missing"}
            )
            raise falcon.HTTPServiceUnavailable(
                code="demo_unavailable",
                description="Demo login is on but the demo user is missing or disabled",
            )
        self._issue(resp, user, reason="demo")


class JwksResource:
    """GET /.well-known/jwks.json: the public keys tokens are verified with."""

    def __init__(self, keyring):
        self._keyring = keyring

    def on_get(self, req, resp):
        resp.media = self._keyring.jwks()
        # Verifiers that honour this refetch within a minute, so a newly added key is seen soon.
        resp.cache_control = ["public", "max-age=60"]


class HealthResource:
    """GET /healthz: the process is up and routing requests."""

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}
