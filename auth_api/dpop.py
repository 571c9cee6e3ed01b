"""DPoP at login and refresh (RFC 9449 section 5): a proof binds the issued tokens to the client's key.

The proof is checked with the validator's rules (validator.dpop): `htm` POST, `htu` the endpoint's
URL as the client called it, `iat` within IAT_WINDOW_SECONDS, each `jti` once. Behind the gateway,
Nginx tells us that URL: `X-Jwtgate-Self-Origin` ($scheme://$http_host) and `X-Original-URI`
($request_uri), replacing any client copy. Without them (the auth API called directly), the URL is
rebuilt from the request's own scheme, Host and path.
"""

import logging
import os

import falcon

from jwtgate.replay import SqliteReplayCache
from validator.dpop import ProofChecker, ProofRejected, request_url
from validator.resources import authorization_token
from validator.tokens import TokenRejected

logger = logging.getLogger(__name__)

# As VALIDATOR_DPOP_IAT_WINDOW_SECONDS's default: how far a proof's iat may be from now.
IAT_WINDOW_SECONDS = 60
_MAX_TOKEN_BYTES = 4096


def invalid_dpop_proof():
    # RFC 9449 section 5: a token request with a bad proof is a 400 with this error code.
    return falcon.HTTPBadRequest(code="invalid_dpop_proof", description="Invalid DPoP proof")


def endpoint_url(req):
    """The normalised URL the client sent this request to, for comparison with a proof's `htu`."""
    origin = req.get_header("X-Jwtgate-Self-Origin")
    if origin:
        scheme, _, host = origin.partition("://")
    else:
        scheme, host = req.scheme, req.get_header("Host")
    return request_url(scheme, host, req.get_header("X-Original-URI") or req.path)


class TokenEndpointProofs:
    """Reads the optional DPoP proof of a login or refresh request: the key's thumbprint, or None."""

    def __init__(self, checker, replay):
        self._checker = checker
        self._replay = replay

    @classmethod
    def open(cls, data_dir, clock):
        """Proofs checked against a replay cache in the data directory, shared by every worker."""
        return cls(ProofChecker(iat_window=IAT_WINDOW_SECONDS, clock=clock),
                   SqliteReplayCache(os.path.join(data_dir, "dpop-replay-auth.db"), clock))

    def key_of(self, req, access_token=None):
        """None without a DPoP header; the thumbprint (`jkt`) of a valid proof's key; else 400.

        With access_token, the proof must carry its hash (`ath`), as at the validator.
        """
        proof = req.get_header("DPoP")
        if proof is None:
            return None
        try:
            checked = self._checker.check(proof, method=req.method, url=endpoint_url(req), access_token=access_token)
        except ProofRejected as rejected:
            logger.info("dpop proof refused", extra={"result": "denied", "reason": "invalid_dpop_proof",
                                                     "error": rejected.detail})
            raise invalid_dpop_proof() from None
        if not self._replay.first_use(*self._checker.replay_key(checked)):
            logger.info("dpop proof refused", extra={"result": "denied", "reason": "invalid_dpop_proof",
                                                     "error": "replayed"})
            raise invalid_dpop_proof()
        return checked.jkt


def header_identity(req, checker, proofs):
    """The Identity of the Authorization header's access token, for logout; TokenRejected if refused.

    As at the validator (RFC 9449 section 7): a bound token needs the DPoP scheme and a proof by its key,
    so a stolen one cannot end its owner's session; an unbound token needs the Bearer scheme.
    """
    scheme, token = authorization_token(req.get_header("Authorization"), _MAX_TOKEN_BYTES)
    identity = checker.token_identity(token)
    if identity.jkt is None:
        if scheme != "bearer":
            raise TokenRejected("dpop_unbound")
        return identity
    if scheme != "dpop" or proofs is None or proofs.key_of(req, access_token=token) != identity.jkt:
        raise TokenRejected("dpop_required")
    return identity
