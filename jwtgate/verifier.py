"""From a bearer token to an Identity: cache, syntax, provider, key, signature, claims, in that order."""

import time

from jwtgate.claims import Policy, check_claims, check_type
from jwtgate.jose import parse, token_digest, verify_signature
from jwtgate.reasons import TokenRejected, UnknownKey


class Verifier:
    """Verifies tokens against their provider's keys and policy and the revocations, caching only valid verdicts."""

    def __init__(self, issuers, cache, revocations, clock=time.time):
        # {issuer: (Policy, keys)}: the token's `iss` picks one, and only that provider's keys are tried.
        self._issuers = issuers
        self._cache = cache
        self._revocations = revocations
        self._clock = clock

    @classmethod
    def single(cls, keys, cache, policy: Policy, revocations, clock=time.time):
        """A verifier trusting one provider."""
        return cls({policy.issuer: (policy, keys)}, cache, revocations, clock)

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
        # The unverified `iss` only chooses whose keys to try (never every key set); the signature
        # then proves it, and check_claims compares it again.
        if "iss" not in claims:
            raise TokenRejected("invalid_claims")
        issuer = claims["iss"]
        trusted = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise TokenRejected("wrong_issuer")
        policy, keys = trusted
        check_type(header, policy.accepted_typ)
        kid = header.get("kid", "")
        key = keys.get(kid)
        if key is None:
            raise UnknownKey(kid, keys)
        if policy.algorithms is not None and key.alg not in policy.algorithms:
            raise TokenRejected("unsupported_algorithm")
        verify_signature(token, header, signature, key)
        # The payload as signed and parsed, when forwarded: no re-encoding can make it say something else.
        payload = token.split(".")[1] if policy.forward_claims else None
        return check_claims(claims, policy, self._clock(), share=self._cache.share, payload=payload)
