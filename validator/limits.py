"""Size limits the strict parser does not state itself: how deeply a token's JSON may nest.

python's json module would parse a few hundred levels of `[[[...]]]` inside a 4 KiB token, and
refuses a thousand only by running out of recursion. No access token needs more than a few
levels, so /verify refuses anything deeper than MAX_JSON_DEPTH as `malformed`, before the token
is parsed or its signature checked.
"""

import base64
import binascii
import logging

import falcon

from jwtgate import request_id
from jwtgate.logs import fingerprint
from validator.resources import challenge, request_token
from validator.tokens import TokenRejected

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 10

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def exceeds_depth(data, limit=MAX_JSON_DEPTH):
    """True when the JSON text in `data` nests arrays and objects more than `limit` deep.

    Brackets inside strings do not count. The text need not be valid JSON: the parser
    judges that later; this only bounds the nesting it will be given.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def _decoded(segment):
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return b""


def token_too_deep(token, limit=MAX_JSON_DEPTH):
    """True when the JOSE header or the claims of a compact token nest deeper than `limit`."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    return any(exceeds_depth(_decoded(segment), limit) for segment in parts[:2])


class JsonDepthLimit:
    """Falcon ASGI middleware: /verify answers 401 `malformed` for a token nested too deep."""

    def __init__(self, *, realm, max_token_bytes, limit=MAX_JSON_DEPTH):
        self._max_token_bytes = max_token_bytes
        self._limit = limit
        self._challenge = challenge(realm, "malformed")

    async def process_request(self, req, resp):
        if req.path != "/verify":
            return
        try:
            # The token /verify will check: the Authorization header's, or the access-token cookie's.
            token, _ = request_token(req, self._max_token_bytes)
        except TokenRejected:
            return  # the resource refuses it with the right reason
        if not token_too_deep(token, self._limit):
            return
        resp.status = falcon.HTTP_401
        resp.set_header("WWW-Authenticate", self._challenge)
        resp.set_header("X-Auth-Error", "malformed")
        resp.set_header("Cache-Control", "no-store")
        resp.complete = True
        log.info("verify denied", extra={"result": "denied", "reason": "malformed", "error": "json_depth",
                                         "token_fp": fingerprint(token),
                                         "request_id": request_id.clean(req.get_header(request_id.HEADER))})
