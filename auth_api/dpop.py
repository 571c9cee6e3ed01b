"""DPoP at login, refresh and logout (RFC 9449 sections 5 and 7): a proof binds the issued tokens to the client's key.

The proof is checked with the validator's rules (jwtgate.dpop): `htm` POST, `htu` the endpoint's
URL, `iat` within IAT_WINDOW_SECONDS, each `jti` once. That URL is one of AUTH_PUBLIC_ORIGINS with
the path the client called: behind the gateway, Nginx's `X-Original-URI` ($request_uri, replacing any
client copy), else the request's own path. Never the request's Host (section 4.3: a proof made for
another server must be useless here): without AUTH_PUBLIC_ORIGINS every proof is refused. With
AUTH_DPOP_NONCE_SECONDS, a login or refresh proof must also carry a nonce of ours (section 8).
"""

import logging
import os

import falcon

from jwtgate.credentials import authorization_token
from jwtgate.dpop import Nonces, ProofChecker, ProofRejected, request_urls
from jwtgate.files import load_or_create_secret
from jwtgate.reasons import TokenRejected
from jwtgate.replay import RedisReplayCache, SqliteReplayCache

logger = logging.getLogger(__name__)

# As VALIDATOR_DPOP_IAT_WINDOW_SECONDS's default: how far a proof's iat may be from now.
IAT_WINDOW_SECONDS = 60
_MAX_TOKEN_BYTES = 4096


def invalid_dpop_proof():
    # RFC 9449 section 5: a token request with a bad proof is a 400 with this error code.
    return falcon.HTTPBadRequest(code="invalid_dpop_proof", description="Invalid DPoP proof")


def use_dpop_nonce(nonce):
    # RFC 9449 section 8: a token request whose proof lacks a current nonce gets one to use.
    return falcon.HTTPBadRequest(code="use_dpop_nonce", description="Authorization server requires nonce in DPoP proof",
                                 headers={"DPoP-Nonce": nonce})


class TokenEndpointProofs:
    """Reads the optional DPoP proof of a login or refresh request: the key's thumbprint, or None."""

    def __init__(self, checker, replay, nonces=None, origins=frozenset()):
        self._checker = checker
        self._replay = replay
        self._nonces = nonces
        # AUTH_PUBLIC_ORIGINS: what a proof's htu may name.
        self._origins = origins

    @classmethod
    def open(cls, settings, clock):
        """Proofs checked against a replay cache every worker shares (the data directory's, or Redis's),
        and with nonces when the settings ask for them (their secret, when not set, in the data directory)."""
        nonces = None
        if settings.dpop_nonce_seconds:
            secret = settings.dpop_nonce_secret or load_or_create_secret(
                os.path.join(settings.data_dir, "dpop-nonce-auth.key"))
            nonces = Nonces(secret, settings.dpop_nonce_seconds, clock)
        if settings.dpop_replay_store:
            # AUTH_DPOP_REPLAY_DB: one cache for auth APIs on several hosts.
            replay = RedisReplayCache(settings.dpop_replay_store, prefix="jwtgate:dpop-auth:")
        else:
            replay = SqliteReplayCache(os.path.join(settings.data_dir, "dpop-replay-auth.db"), clock)
        return cls(ProofChecker(iat_window=IAT_WINDOW_SECONDS, clock=clock), replay, nonces, settings.public_origins)

    def key_of(self, req, resp=None):
        """None without a DPoP header; the thumbprint (`jkt`) of a valid proof's key; else 400 (section 5).

        With nonces on, the proof needs a current one, and resp gets the nonce to use next (section 8.2).
        """
        try:
            return self._proven_key(req, resp, None)
        except TokenRejected as rejected:
            if rejected.reason == "use_dpop_nonce":
                raise use_dpop_nonce(self._nonces.current()) from None
            raise invalid_dpop_proof() from None

    def resource_key(self, req, access_token):
        """key_of for logout, a resource rather than a token endpoint: the proof carries the access token's
        hash (`ath`) when one is sent, as at the validator, and a refused one is TokenRejected (section 7.1)."""
        return self._proven_key(req, None, access_token)

    def _proven_key(self, req, resp, access_token):
        proof = req.get_header("DPoP")
        if proof is None:
            return None
        try:
            if not self._origins:
                raise ProofRejected("no_public_origins")
            urls = request_urls(self._origins, req.get_header("X-Original-URI") or req.path)
            checked = self._checker.check(proof, method=req.method, urls=urls, access_token=access_token)
        except ProofRejected as rejected:
            logger.info("dpop proof refused", extra={"result": "denied", "reason": "invalid_dpop_proof",
                                                     "error": rejected.detail})
            raise TokenRejected("invalid_dpop_proof") from None
        if resp is not None and self._nonces is not None:
            if not self._nonces.valid(checked.nonce):
                logger.info("dpop proof refused", extra={"result": "denied", "reason": "use_dpop_nonce"})
                raise TokenRejected("use_dpop_nonce")
            resp.set_header("DPoP-Nonce", self._nonces.current())
        if not self._replay.first_use(*self._checker.replay_key(checked)):
            logger.info("dpop proof refused", extra={"result": "denied", "reason": "invalid_dpop_proof",
                                                     "error": "replayed"})
            raise TokenRejected("dpop_replayed")
        return checked.jkt


def header_identity(req, checker):
    """(token, Identity) of the Authorization header's access token, for logout; TokenRejected if refused.

    As at the validator (RFC 9449 section 7.2): a bound token needs the DPoP scheme, an unbound one the
    Bearer scheme. require_key checks the bound key's proof, with the request's other credentials.
    """
    scheme, token = authorization_token(req.get_header("Authorization"), _MAX_TOKEN_BYTES)
    identity = checker.token_identity(token)
    if identity.jkt is None and scheme != "bearer":
        raise TokenRejected("dpop_unbound")
    if identity.jkt is not None and scheme != "dpop":
        raise TokenRejected("dpop_required")
    return token, identity


def require_key(bound_keys, proof_key):
    """TokenRejected unless every key in bound_keys (None: unbound) is the key of the request's proof.

    RFC 9449 sections 5 and 7: a credential bound to a key, or naming a session bound to one, is worth
    nothing without a proof by that key, whether it came in a header, a cookie or a body. proof_key()
    (the proof's jkt, None without one, or TokenRejected) is called only when something is bound.
    """
    bound = set(bound_keys) - {None}
    if bound and bound != {proof_key()}:
        raise TokenRejected("dpop_required")
