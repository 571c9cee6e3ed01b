"""Credentials of a request (the Authorization header, Bearer or DPoP; the access-token cookie; its Origin)
and the challenge that refuses them."""

import re

from jwtgate.dpop import ALGORITHMS
from jwtgate.reasons import REASONS, TokenRejected

# RFC 6750 section 2.1: the scheme is case-insensitive; we accept exactly one
# space-separated token and leave its syntax to the strict parser.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x2b\x2d-\x7e]+)")
# RFC 9449 section 7.1: the DPoP scheme, for tokens bound to a client key.
_DPOP = re.compile(r"[Dd][Pp][Oo][Pp] +([\x21-\x2b\x2d-\x7e]+)")


def authorization_token(value, max_bytes):
    """(scheme, token) of an `Authorization: Bearer` or `DPoP` header value (scheme in lower case), or TokenRejected."""
    if value is None:
        raise TokenRejected("missing_token")
    # Falcon joins repeated headers with commas, and no token holds a comma: so a
    # comma means two Authorization headers, which could let the gateway check
    # one token while the backend reads the other.
    if len(value) > max_bytes + len("Bearer ") or "," in value:
        raise TokenRejected("invalid_request")
    value = value.strip(" \t")
    for scheme, pattern in (("bearer", _BEARER), ("dpop", _DPOP)):
        match = pattern.fullmatch(value)
        if match is not None:
            return scheme, match.group(1)
    raise TokenRejected("invalid_request")


def bearer_token(value, max_bytes):
    """The token of the `Authorization: Bearer` header value, or TokenRejected."""
    scheme, token = authorization_token(value, max_bytes)
    if scheme != "bearer":
        raise TokenRejected("invalid_request")
    return token


_COOKIE_TOKEN = re.compile(r"[A-Za-z0-9._-]+")


def request_credentials(req, max_bytes):
    """(token, source): source is the Authorization scheme ("bearer", "dpop"), or "cookie" for the fallback."""
    header = req.get_header("Authorization")
    if header is not None:
        scheme, token = authorization_token(header, max_bytes)
        return token, scheme
    cookie = req.get_header("X-Jwtgate-Cookie-Token")
    if not cookie:
        raise TokenRejected("missing_token")
    if len(cookie) > max_bytes or not _COOKIE_TOKEN.fullmatch(cookie):
        raise TokenRejected("invalid_request")
    return cookie, "cookie"


def same_origin(origin, self_origin, allowed_origins):
    """CSRF defence for cookie-authenticated writes: the browser's Origin is the gateway's own or allowed."""
    if not origin:
        return False
    return origin == self_origin or origin in allowed_origins


def challenge(realm, reason, scheme="Bearer", resource_metadata=None):
    """The RFC 6750 section 3 WWW-Authenticate value for a denial (RFC 9449 section 7.1 for DPoP)."""
    error, description = REASONS[reason]
    parameters = [f'realm="{realm}"']
    if error is not None:
        parameters += [f'error="{error}"', f'error_description="{description}"']
    if resource_metadata:
        # RFC 9728 section 5.1: where the client learns which authorization servers issue our tokens.
        parameters.append(f'resource_metadata="{resource_metadata}"')
    if scheme == "DPoP":
        parameters.append(f'algs="{" ".join(ALGORITHMS)}"')
    return f"{scheme} {', '.join(parameters)}"


