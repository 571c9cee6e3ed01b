"""HTTP resources: login, the demo login, the JWKS and the health check."""

import json
import logging

import falcon

from auth_api import passwords
from auth_api.store import valid_username
from auth_api.tokens import mint_access_token
from jwtgate.logs import fingerprint
from validator.tokens import TokenRejected

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


def issue_tokens(resp, settings, keyring, clock, user, *, session_id, refresh_token, refresh_expires_in, event,
                 reason=None):
    """Answer with a new access token for user in session_id, and the session's refresh token."""
    token, claims = mint_access_token(
        keyring, settings, subject=user.username, roles=user.roles, scope=user.scope, now=clock, session=session_id
    )
    logger.info(
        event,
        extra={"user": user.username, "result": "ok", "reason": reason, "kid": keyring.active.kid,
               "token_fp": fingerprint(token)},
    )
    # `token` repeats access_token for clients of the original design, which read that name.
    resp.media = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "token": token,
        "refresh_token": refresh_token,
        "refresh_expires_in": refresh_expires_in,
    }
    # RFC 6749 section 5.1: a response carrying a token must not be stored by any cache.
    resp.cache_control = ["no-store"]
    resp.set_header("Pragma", "no-cache")


def _invalid_grant():
    return falcon.HTTPUnauthorized(code="invalid_grant", description="Invalid or expired refresh token")


class RefreshResource:
    """POST /api/auth/refresh: a refresh token in, a new access token and a new refresh token out."""

    def __init__(self, settings, *, store, keyring, sessions, clock):
        self._settings = settings
        self._store = store
        self._keyring = keyring
        self._sessions = sessions
        self._clock = clock

    def on_post(self, req, resp):
        body = read_json_body(req, self._settings.max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("refresh_token"), str):
            raise _invalid_request("refresh_token is required and must be a string")
        outcome, new_token = self._sessions.rotate(body["refresh_token"])
        if outcome.status == "reused":
            logger.warning("refresh token reused: session revoked",
                           extra={"user": outcome.username, "result": "denied", "reason": "reused"})
            raise _invalid_grant()
        user = self._store.get_user(outcome.username) if outcome.status == "ok" else None
        if user is None:
            logger.info("refresh", extra={"user": outcome.username, "result": "denied", "reason": outcome.status})
            raise _invalid_grant()
        issue_tokens(resp, self._settings, self._keyring, self._clock, user, session_id=outcome.session_id,
                     refresh_token=new_token, refresh_expires_in=outcome.expires_at - int(self._clock()),
                     event="refresh")


class LogoutResource:
    """POST /api/auth/logout: ends the bearer token's session (and a refresh token's, if sent); 204."""

    def __init__(self, settings, *, checker, sessions):
        self._settings = settings
        self._checker = checker
        self._sessions = sessions

    def on_post(self, req, resp):
        try:
            identity = self._checker.identity(req.get_header("Authorization"))
        except TokenRejected as rejected:
            raise falcon.HTTPUnauthorized(
                code="invalid_token", description="A valid access token is required to log out",
                challenges=['Bearer realm="jwtgate", error="invalid_token"'],
            ) from rejected
        body = read_json_body(req, self._settings.max_body_bytes) if req.content_length else {}
        if not isinstance(body, dict):
            raise _invalid_request("The request body must be a JSON object")
        self._sessions.revoke_access_token(identity.jti, identity.exp)
        ended = {identity.sid, self._sessions.session_of(body.get("refresh_token"))} - {None}
        for session_id in ended:
            self._sessions.end(session_id)
        logger.info("logout", extra={"user": identity.sub, "result": "ok"})
        resp.status = falcon.HTTP_204


class LoginResource:
    """POST /api/auth/login: a username and password in, an access token out."""

    def __init__(self, settings, *, store, keyring, sessions, clock):
        self._settings = settings
        self._store = store
        self._keyring = keyring
        self._sessions = sessions
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
        session_id, refresh_token, refresh_lifetime = self._sessions.start(user.username)
        issue_tokens(resp, self._settings, self._keyring, self._clock, user, session_id=session_id,
                     refresh_token=refresh_token, refresh_expires_in=refresh_lifetime, event="login", reason=reason)


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
