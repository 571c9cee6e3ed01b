"""HTTP resources: /verify (the auth_request oracle) and /healthz."""

import logging
import re

import falcon

from jwtgate.logs import fingerprint
from validator.tokens import REASONS, TokenRejected, UnknownKey

log = logging.getLogger(__name__)

# RFC 6750 section 2.1: the scheme is case-insensitive; we accept exactly one
# space-separated token and leave its syntax to the strict parser.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x2b\x2d-\x7e]+)")
_REQUEST_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


def bearer_token(value, max_bytes):
    """The token of the `Authorization: Bearer` header value, or TokenRejected."""
    if value is None:
        raise TokenRejected("missing_token")
    # Falcon joins repeated headers with commas, and no token holds a comma: so a
    # comma means two Authorization headers, which could let the gateway check
    # one token while the backend reads the other.
    if len(value) > max_bytes + len("Bearer ") or "," in value:
        raise TokenRejected("invalid_request")
    match = _BEARER.fullmatch(value.strip(" \t"))
    if match is None:
        raise TokenRejected("invalid_request")
    return match.group(1)


def challenge(realm, reason):
    """The RFC 6750 section 3 WWW-Authenticate value for a denial."""
    error, description = REASONS[reason]
    if error is None:
        return f'Bearer realm="{realm}"'
    return f'Bearer realm="{realm}", error="{error}", error_description="{description}"'


class Verify:
    """GET/HEAD /verify: 200 with identity headers, or 401 with a challenge and X-Auth-Error."""

    def __init__(self, verifier, keys, *, realm, max_token_bytes):
        self._verifier = verifier
        self._keys = keys
        self._max_token_bytes = max_token_bytes
        self._challenges = {reason: challenge(realm, reason) for reason in REASONS}

    async def on_get(self, req, resp):
        token = None
        try:
            token = bearer_token(req.get_header("Authorization"), self._max_token_bytes)
            try:
                identity = self._verifier.verify(token)
            except UnknownKey as unknown:
                if not unknown.kid:
                    raise
                await self._keys.refresh()
                identity = self._verifier.verify(token)
        except TokenRejected as rejected:
            self._deny(req, resp, rejected.reason, token)
            return
        except Exception:
            # Fail closed: whatever broke, this request is not authenticated.
            log.exception("verify failed", extra={"request_id": self._request_id(req)})
            self._deny(req, resp, "internal_error", token)
            return
        resp.status = falcon.HTTP_200
        resp.set_header("X-User-Id", identity.sub)
        resp.set_header("X-User-Roles", ",".join(identity.roles))
        resp.set_header("X-User-Scopes", ",".join(identity.scopes))
        resp.set_header("Cache-Control", "no-store")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "verify allowed",
                extra={"result": "allowed", "user": identity.sub, "token_fp": fingerprint(token),
                       "request_id": self._request_id(req)},
            )

    on_head = on_get

    def _deny(self, req, resp, reason, token):
        resp.status = falcon.HTTP_401
        resp.set_header("WWW-Authenticate", self._challenges[reason])
        resp.set_header("X-Auth-Error", reason)
        resp.set_header("Cache-Control", "no-store")
        log.info(
            "verify denied",
            extra={"result": "denied", "reason": reason, "request_id": self._request_id(req),
                   "token_fp": fingerprint(token) if token else None},
        )

    @staticmethod
    def _request_id(req):
        value = req.get_header("X-Request-Id")
        return value if value and _REQUEST_ID.fullmatch(value) else None


class Health:
    """GET /healthz: liveness, and how many keys this worker holds."""

    def __init__(self, keys):
        self._keys = keys

    async def on_get(self, req, resp):
        resp.media = {"status": "ok", "keys": len(self._keys)}
