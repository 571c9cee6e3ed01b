"""Checking the gateway's signed identity assertion (X-Jwtgate-Assertion), as any backend could.

Steps, in any language: take the key whose `kid` the assertion names from the
validator's public JWKS (the data directory's assertion/jwks.json, or GET
/assertion-jwks.json on the validator); verify the ES256 signature with that key
only; then require aud = your audience, iss = jwtgate-gateway, exp in the future,
and method, path and sub equal to the request you are serving.
"""

import json
import posixpath
import time
import urllib.parse

from jose import jwk, jws

from jwtgate.jose import parse
from jwtgate.reasons import TokenRejected

_LEEWAY_SECONDS = 5


class AssertionRejected(Exception):
    """The request carries no valid assertion for itself."""


def _path(uri):
    path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(uri).path) or "/")
    return path.rstrip("/") or "/"


class AssertionChecker:
    """Verifies assertions against the validator's public keys, read from a JWKS file."""

    def __init__(self, jwks_path, audience, clock=time.time):
        self._jwks_path = jwks_path
        self._audience = audience
        self._clock = clock
        self._keys = {}

    def _key(self, kid):
        if kid not in self._keys:
            # The validator makes its key when it first starts, which may be after us.
            with open(self._jwks_path) as handle:
                members = json.load(handle)["keys"]
            self._keys = {member["kid"]: jwk.construct(member, "ES256") for member in members}
        return self._keys.get(kid)

    def check(self, assertion, *, method, path, user_id):
        """Return the assertion's claims, or raise AssertionRejected."""
        if not assertion:
            raise AssertionRejected("missing")
        try:
            header, claims, _ = parse(assertion)
        except TokenRejected:
            raise AssertionRejected("malformed") from None
        if header["alg"] != "ES256" or header.get("typ") != "jwtgate-assertion+jwt":
            raise AssertionRejected("algorithm")
        try:
            key = self._key(header.get("kid", ""))
        except (OSError, ValueError, KeyError):
            raise AssertionRejected("keys unreadable") from None
        if key is None:
            raise AssertionRejected("unknown key")
        try:
            jws.verify(assertion, key, algorithms=["ES256"])
        except Exception:
            raise AssertionRejected("signature") from None
        now = self._clock()
        exp, iat = claims.get("exp"), claims.get("iat")
        if type(exp) is not int or type(iat) is not int or now >= exp + _LEEWAY_SECONDS or iat > now + _LEEWAY_SECONDS:
            raise AssertionRejected("expired")
        if (claims.get("aud"), claims.get("iss")) != (self._audience, "jwtgate-gateway"):
            raise AssertionRejected("audience")
        if claims.get("method") != method or claims.get("sub") != user_id:
            raise AssertionRejected("request")
        if not isinstance(claims.get("uri"), str) or _path(claims["uri"]) != _path(path):
            raise AssertionRejected("request")
        return claims
