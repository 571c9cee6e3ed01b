"""Checking our own access tokens, for logout: the shared Verifier, as the validator uses it."""

import time

from jwtgate.claims import OWN_TOKEN_CLAIMS, Policy
from jwtgate.credentials import bearer_token
from jwtgate.keys import StaticKeys, keys_from_jwks
from jwtgate.reasons import TokenRejected
from jwtgate.revocation import NoRevocations
from jwtgate.verdicts import VerdictCache
from jwtgate.verifier import Verifier

_MAX_TOKEN_BYTES = 4096


class AccessTokenChecker:
    """Verifies an access token (bearer header or cookie) against the keys this auth API publishes."""

    def __init__(self, settings, keyring, *, clock=time.time):
        self._settings = settings
        self._keyring = keyring
        self._clock = clock
        self._policy = Policy(issuer=settings.issuer, audiences=(settings.audience,), exact_audience=True,
                              required_claims=OWN_TOKEN_CLAIMS, accepted_typ=("at+jwt",), leeway_seconds=30)

    def identity(self, authorization):
        """The Identity of a valid token in the header value; raises TokenRejected otherwise."""
        return self.token_identity(bearer_token(authorization, _MAX_TOKEN_BYTES))

    def token_identity(self, token):
        """The Identity of a valid access token (from the header or the browser's cookie), or TokenRejected."""
        if len(token) > _MAX_TOKEN_BYTES:
            raise TokenRejected("invalid_request")
        if self._settings.hs256_secret is not None:
            keys = StaticKeys(self._settings.hs256_secret)
        else:
            keys, _ = keys_from_jwks(self._keyring.jwks())
        # Keys follow rotation, so a verifier (without a cache) is built per call: logout is rare.
        verifier = Verifier.single(keys, VerdictCache(0, 0), self._policy, NoRevocations(), self._clock)
        return verifier.verify(token)
