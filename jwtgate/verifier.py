"""From a bearer token to an Identity: cache, syntax, key, signature, claims, in that order."""

import time

from jwtgate.claims import Policy, check_claims, check_type
from jwtgate.jose import parse, token_digest, verify_signature
from jwtgate.reasons import TokenRejected, UnknownKey


class Verifier:
    """Verifies tokens against keys, a policy and the revocations, caching only valid verdicts."""

    def __init__(self, keys, cache, policy: Policy, revocations, clock=time.time):
        self._keys = keys
        self._cache = cache
        self._policy = policy
        self._revocations = revocations
        self._clock = clock

    def verify(self, token):
        """Return the token's Identity or raise TokenRejected (UnknownKey when the kid is not held)."""
        digest = token_digest(token)
        identity = self._cache.get(digest)
        if identity is None:
            identity = self._validate(token)
            self._cache.put(digest, identity)
        # Revocation is checked on every request, cached verdicts included.
        refusal = self._revocations.refusal(identity)
        if refusal is not None:
            raise TokenRejected(refusal)
        return identity

    def _validate(self, token):
        header, claims, signature = parse(token)
        check_type(header, self._policy.accepted_typ)
        kid = header.get("kid", "")
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(kid)
        verify_signature(token, header, signature, key)
        # The payload as signed and parsed, when forwarded: no re-encoding can make it say something else.
        payload = token.split(".")[1] if self._policy.forward_claims else None
        return check_claims(claims, self._policy, self._clock(), share=self._cache.share, payload=payload)
