"""HTTP resources: login, the demo login, the JWKS, the server metadata and the health check."""

import json
import logging

import falcon

from auth_api import passwords
from auth_api.dpop import header_identity, require_key
from auth_api.cookies import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    clear_session_cookies,
    cookie_value,
    cross_site_request,
    same_origin,
    set_session_cookies,
)
from auth_api.limits import UNTHROTTLED
from auth_api.metrics import count_login
from auth_api.store import valid_username
from auth_api.tokens import mint_access_token
from jwtgate.logs import fingerprint
from jwtgate.credentials import challenge
from jwtgate.reasons import REASONS, TokenRejected

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
                 reason=None, cookies=False, jkt=None):
    """Answer with a new access token for user in session_id, and the session's refresh token.

    With cookies, both go in HttpOnly cookies only: the body names neither, so no page script sees them.
    With jkt (a DPoP proof's key), the access token is bound to that key: token_type DPoP (RFC 9449 section 5).
    """
    token, claims = mint_access_token(
        keyring, settings, subject=user.username, roles=user.roles, scope=user.scope, now=clock, session=session_id,
        jkt=jkt,
    )
    logger.info(
        event,
        extra={"user": user.username, "result": "ok", "reason": reason, "kid": keyring.active.kid,
               "token_fp": fingerprint(token)},
    )
    if cookies:
        set_session_cookies(resp, settings, access_token=token, access_lifetime=claims["exp"] - claims["iat"],
                            refresh_token=refresh_token, refresh_lifetime=refresh_expires_in)
        resp.media = {"cookie": True, "expires_in": claims["exp"] - claims["iat"],
                      "refresh_expires_in": refresh_expires_in}
    else:
        # `token` repeats access_token for clients of the original design, which read that name.
        resp.media = {
            "access_token": token,
            "token_type": "Bearer" if jkt is None else "DPoP",
            "expires_in": claims["exp"] - claims["iat"],
            "token": token,
            "refresh_token": refresh_token,
            "refresh_expires_in": refresh_expires_in,
        }
    # RFC 6749 section 5.1: a response carrying a token must not be stored by any cache.
    resp.cache_control = ["no-store"]
    resp.set_header("Pragma", "no-cache")


def _invalid_grant(challenges=None):
    return falcon.HTTPUnauthorized(code="invalid_grant", description="Invalid or expired refresh token",
                                   challenges=challenges)


# RFC 9449 section 7.1: a refusal for want of the bound key's proof names the DPoP scheme and its algorithms.
_DPOP_CHALLENGES = {reason: [challenge("jwtgate", reason, "DPoP")]
                    for reason in ("dpop_required", "dpop_unbound", "invalid_dpop_proof", "dpop_replayed")}


class Refresh:
    """POST /api/auth/refresh: a refresh token in, a new access token and a new refresh token out.

    The token comes from the body, or from the browser's refresh cookie when the body names none; then
    the new tokens go back in cookies.
    """

    def __init__(self, settings, *, store, keyring, sessions, clock, proofs=None):
        self._settings = settings
        self._store = store
        self._keyring = keyring
        self._sessions = sessions
        self._clock = clock
        # auth_api.dpop.TokenEndpointProofs; None: DPoP headers are ignored and tokens are bearer tokens.
        self._proofs = proofs

    def on_post(self, req, resp):
        body = read_json_body(req, self._settings.max_body_bytes)
        if not isinstance(body, dict):
            raise _invalid_request("refresh_token is required and must be a string")
        jkt = self._proofs.key_of(req, resp) if self._proofs is not None else None
        token, cookies = body.get("refresh_token"), False
        if token is None and cookie_value(req, REFRESH_COOKIE) is not None:
            token, cookies = cookie_value(req, REFRESH_COOKIE), True
            if not same_origin(req, self._settings.allowed_origins):
                raise cross_site_request()
        if not isinstance(token, str):
            raise _invalid_request("refresh_token is required and must be a string")
        outcome, new_token = self._sessions.rotate(token, jkt)
        if outcome.status == "reused":
            logger.warning("refresh token reused: session revoked",
                           extra={"user": outcome.username, "result": "denied", "reason": "reused"})
            raise _invalid_grant()
        if outcome.status == "wrong_key":
            # The store compares the session's binding with the proof's key in the rotation's own transaction.
            logger.info("refresh", extra={"user": outcome.username, "result": "denied", "reason": "dpop_required"})
            raise _invalid_grant(_DPOP_CHALLENGES["dpop_required"])
        user = self._store.get_user(outcome.username) if outcome.status == "ok" else None
        if user is None:
            logger.info("refresh", extra={"user": outcome.username, "result": "denied", "reason": outcome.status})
            raise _invalid_grant()
        issue_tokens(resp, self._settings, self._keyring, self._clock, user, session_id=outcome.session_id,
                     refresh_token=new_token, refresh_expires_in=outcome.expires_at - int(self._clock()),
                     event="refresh", cookies=cookies, jkt=jkt)


class Logout:
    """POST /api/auth/logout: ends the bearer token's session (and a refresh token's, if sent); 204.

    Without an Authorization header, the browser's cookies are the credential: a valid access cookie, or
    a refresh cookie of the session, from the gateway's own origin. Either way the cookies are cleared.
    Whichever way a DPoP-bound token or session is named, the request needs a proof by its key.
    """

    def __init__(self, settings, *, checker, sessions, proofs=None):
        self._settings = settings
        self._checker = checker
        self._sessions = sessions
        # auth_api.dpop.TokenEndpointProofs: a DPoP-bound token or session logs out with its key's proof.
        self._proofs = proofs

    def on_post(self, req, resp):
        access_cookie, refresh_cookie = cookie_value(req, ACCESS_COOKIE), cookie_value(req, REFRESH_COOKIE)
        try:
            if req.get_header("Authorization") is None and (access_cookie or refresh_cookie):
                token, identity, cookie_session = self._from_cookies(req, access_cookie, refresh_cookie)
            else:
                (token, identity), cookie_session = header_identity(req, self._checker), None
        except TokenRejected as rejected:
            raise _logout_refused(rejected.reason) from rejected
        body = read_json_body(req, self._settings.max_body_bytes) if req.content_length else {}
        if not isinstance(body, dict):
            raise _invalid_request("The request body must be a JSON object")
        ended = {cookie_session, self._sessions.session_of(body.get("refresh_token"))}
        if identity is not None:
            ended.add(identity.sid)
        ended.discard(None)
        # One check for every credential that names a session, before anything is revoked.
        bound = {identity.jkt if identity is not None else None} | {self._sessions.bound_key(s) for s in ended}
        try:
            require_key(bound, lambda: self._proof_key(req, token))
        except TokenRejected as rejected:
            logger.info("logout", extra={"user": identity.sub if identity else None, "result": "denied",
                                         "reason": rejected.reason})
            raise _logout_refused(rejected.reason) from rejected
        if identity is not None:
            self._sessions.revoke_access_token(identity.jti, identity.exp)
        for session_id in ended:
            self._sessions.end(session_id)
        logger.info("logout", extra={"user": identity.sub if identity else None, "result": "ok"})
        clear_session_cookies(resp, self._settings)
        resp.status = falcon.HTTP_204

    def _proof_key(self, req, token):
        return None if self._proofs is None else self._proofs.resource_key(req, token)

    def _from_cookies(self, req, access_cookie, refresh_cookie):
        """(access token, its Identity, session id): the token and Identity None unless the access cookie is valid."""
        if not same_origin(req, self._settings.allowed_origins):
            raise cross_site_request()
        identity = None
        if access_cookie:
            try:
                identity = self._checker.token_identity(access_cookie)
            except TokenRejected:
                # An expired access cookie still lets its refresh cookie end the session.
                pass
        session_id = self._sessions.session_of(refresh_cookie)
        if identity is None and session_id is None:
            raise TokenRejected("missing_token")
        return (access_cookie if identity is not None else None), identity, session_id


def _logout_refused(reason):
    if reason in _DPOP_CHALLENGES:
        return falcon.HTTPUnauthorized(code=REASONS[reason][0], description=REASONS[reason][1],
                                       challenges=_DPOP_CHALLENGES[reason])
    return falcon.HTTPUnauthorized(
        code="invalid_token", description="A valid access token is required to log out",
        challenges=['Bearer realm="jwtgate", error="invalid_token"'],
    )


class Login:
    """POST /api/auth/login: a username and password in, an access token out."""

    def __init__(self, settings, *, store, keyring, sessions, clock, throttle=UNTHROTTLED, proofs=None):
        self._settings = settings
        self._store = store
        self._keyring = keyring
        self._sessions = sessions
        self._clock = clock
        self._throttle = throttle
        # auth_api.dpop.TokenEndpointProofs; None: DPoP headers are ignored and tokens are bearer tokens.
        self._proofs = proofs

    def on_post(self, req, resp):
        body = read_json_body(req, self._settings.max_body_bytes)
        if not isinstance(body, dict):
            raise _invalid_request("The request body must be a JSON object")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise _invalid_request("username and password are required and must be strings")
        cookies = body.get("cookie", False)
        if not isinstance(cookies, bool):
            raise _invalid_request("cookie must be true or false")
        if cookies and not same_origin(req, self._settings.allowed_origins):
            raise cross_site_request()
        jkt = self._proofs.key_of(req, resp) if self._proofs is not None else None
        if jkt is not None and cookies:
            # A browser's cookie is sent without a proof: a DPoP-bound token there would never work.
            raise _invalid_request("DPoP and cookie login cannot be combined")

        # Charged before the password is checked, known user or not (auth_api.limits).
        locked_for = self._throttle.attempt(username)
        if locked_for:
            raise self._denied(username, "locked", retry_after=locked_for)
        user = self._store.get_user(username)
        if user is None:
            passwords.verify_dummy(password)
            raise self._denied(username, "unknown_user")
        # The hash is checked even for a disabled user, so the answer's timing says nothing about the account.
        if not passwords.verify(user.password_hash, password):
            raise self._denied(username, "wrong_password")
        if user.disabled:
            raise self._denied(username, "disabled")
        self._throttle.succeeded(username)
        self._issue(resp, user, cookies=cookies, jkt=jkt)

    def _denied(self, username, reason, retry_after=None):
        logger.info(
            "login",
            extra={"user": username if valid_username(username) else None, "result": "denied", "reason": reason},
        )
        count_login(reason)
        # No WWW-Authenticate challenge: the credentials travel in the body, which no HTTP auth scheme describes.
        # A locked name, existing or not, gets the same answer plus when to try again.
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return falcon.HTTPUnauthorized(code="invalid_credentials", description=INVALID_CREDENTIALS, headers=headers)

    def _issue(self, resp, user, reason=None, cookies=False, jkt=None):
        session_id, refresh_token, refresh_lifetime = self._sessions.start(user.username, jkt)
        issue_tokens(resp, self._settings, self._keyring, self._clock, user, session_id=session_id,
                     refresh_token=refresh_token, refresh_expires_in=refresh_lifetime, event="login", reason=reason,
                     cookies=cookies, jkt=jkt)
        count_login(reason or "ok")


class DemoLogin(Login):
    """Login plus GET, which hands the demo user's token to anyone: AUTH_DEMO_LOGIN only."""

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


class Jwks:
    """GET /.well-known/jwks.json: the public keys tokens are verified with."""

    def __init__(self, keyring):
        self._keyring = keyring

    def on_get(self, req, resp):
        resp.media = self._keyring.jwks()
        # Verifiers that honour this refetch within a minute, so a newly added key is seen soon.
        resp.cache_control = ["public", "max-age=60"]


class ServerMetadata:
    """GET /.well-known/oauth-authorization-server (issuer path appended): RFC 8414 metadata (auth_api.metadata)."""

    def __init__(self, document):
        self._document = document

    def on_get(self, req, resp):
        resp.media = self._document
        # The document changes only with AUTH_ISSUER, that is with a restart.
        resp.cache_control = ["public", "max-age=3600"]


class Health:
    """GET /healthz: the process is up and routing requests."""

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}
