"""The validator's DPoP step (RFC 9449 section 7): a bound token's proof, its nonce, and its `jti` used once."""

import asyncio
import hmac
from concurrent.futures import ThreadPoolExecutor

from jwtgate.dpop import ProofRejected, request_urls
from jwtgate.reasons import TokenRejected


class ProofGate:
    """The validator's step for a DPoP-bound token: a valid, unreplayed proof for this request and key."""

    def __init__(self, checker, replay, nonces=None, origins=frozenset()):
        self._checker = checker
        self._replay = replay
        # Nonces when the validator demands them (VALIDATOR_DPOP_NONCE_SECONDS), else None.
        self.nonces = nonces
        # VALIDATOR_PUBLIC_ORIGINS: the origins a proof's htu may name; none, and every proof is refused.
        self._origins = origins
        # The shared replay insert may wait for another worker's write lock: it waits in a thread of
        # its own (made on the first proof), and the worker's event loop answers other requests meanwhile.
        self._inserts = ThreadPoolExecutor(1, thread_name_prefix="dpop-replay")

    async def check(self, proof, *, method, uri, access_token, jkt):
        """The checked Proof for the request to `uri` ($request_uri), or TokenRejected: invalid_dpop_proof
        (with .detail), use_dpop_nonce or dpop_replayed."""
        try:
            if not self._origins:
                raise ProofRejected("no_public_origins")
            checked = self._checker.check(proof, method=method, urls=request_urls(self._origins, uri),
                                          access_token=access_token)
            if not hmac.compare_digest(checked.jkt, jkt):
                # A valid proof by another key: a stolen token with the thief's own proof.
                raise ProofRejected("jkt_mismatch")
        except ProofRejected as rejected:
            refusal = TokenRejected("invalid_dpop_proof")
            refusal.detail = rejected.detail
            raise refusal from None
        # RFC 9449 section 9: a proof without a current nonce of ours is answered with one to use.
        if self.nonces is not None and not self.nonces.valid(checked.nonce):
            raise TokenRejected("use_dpop_nonce")
        # Last, so only a proof that passed everything else uses up its jti.
        first = await asyncio.get_running_loop().run_in_executor(
            self._inserts, self._replay.first_use, *self._checker.replay_key(checked))
        if not first:
            raise TokenRejected("dpop_replayed")
        return checked
