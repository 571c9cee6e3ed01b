"""From a bearer token to an Identity: cache, syntax, key, signature, claims, in that order."""

import time

from validator.tokens import Policy, UnknownKey, check_claims, check_type, parse, token_digest, verify_signature


class Verifier:
    """Verifies tokens against a key source and a policy, caching only full successes."""

    def __init__(self, keys, cache, policy: Policy, clock=time.time):
        self._keys = keys
        self._cache = cache
        self._policy = policy
        self._clock = clock

    def verify(self, token):
        """Return the token's Identity or raise TokenRejected (UnknownKey when the kid is not held)."""
        digest = token_digest(token)
        identity = self._cache.get(digest)
        if identity is not None:
            return identity
        header, claims = parse(token)
        check_type(header, self._policy.accepted_typ)
        kid = header.get("kid", "")
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(kid)
        verify_signature(token, header, key)
        identity = check_claims(claims, self._policy, self._clock())
        self._cache.put(digest, identity)
        return identity
