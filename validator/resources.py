"""HTTP resources: /verify (the auth_request oracle), the RFC 9728 metadata, and /healthz."""

import logging
import math
import re
import time

import falcon

from jwtgate.credentials import challenge, request_credentials, same_origin
from jwtgate.logs import fingerprint
from jwtgate.reasons import REASONS, TokenRejected, UnknownKey
from validator import authorization
from validator.config import CLAIMS_HEADER

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
# RFC 9110 section 9.2.1: only these methods are safe; the others change state.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DPOP_REASONS = frozenset({"dpop_required", "dpop_unbound", "invalid_dpop_proof", "dpop_replayed", "use_dpop_nonce"})


def micro_cache_control(exp, now, max_age):
    """Cache-Control for an allowed verdict: kept at most `max_age` seconds, and never past `exp`."""
    # Nginx serves a cached entry through the whole second in which it expires (it compares
    # whole seconds: stored at t, `max-age=n` holds until floor(t) + n + 1), so one second
    # comes off both bounds: a stored verdict never outlives exp, nor max_age after it was stored.
    seconds = min(max_age - 1, math.floor(exp - now) - 1)
    return f"max-age={seconds}" if seconds > 0 else "no-store"


def _providers(req):
    return authorization.providers(req.get_header("X-Jwtgate-Providers"))


def _requirements(req):
    return authorization.parse(
        req.get_header("X-Jwtgate-Require-Scopes"),
        req.get_header("X-Jwtgate-Require-Roles"),
        req.get_header("X-Jwtgate-Require-Claims"),
    )


class Verify:
    """GET/HEAD /verify: 200 with identity headers, 401 (who are you?) or 403 (not allowed here)."""

    def __init__(self, verifier, stats, *, realm, max_token_bytes, claim_headers, allowed_origins=frozenset(),
                 verdict_max_age=0, assertions=None, dpop=None, resource_metadata=None, clock=time.time,
                 timer=time.perf_counter):
        self._verifier = verifier
        # validator.metrics.VerifyStats: every answer's result and latency.
        self._stats = stats
        self._realm = realm
        self._max_token_bytes = max_token_bytes
        self._claim_headers = claim_headers
        self._allowed_origins = allowed_origins
        self._assertions = assertions
        self._verdict_max_age = verdict_max_age
        self._clock = clock
        self._timer = timer
        # resource_metadata: the URL of the RFC 9728 document (None: there is none to name).
        self._challenges = {reason: challenge(realm, reason, "Bearer", resource_metadata) for reason in REASONS}
        self._dpop_challenges = {reason: challenge(realm, reason, "DPoP", resource_metadata) for reason in REASONS}
        # validator.proof_gate.ProofGate; without one, every DPoP-bound token is refused.
        self._dpop = dpop

    async def on_get(self, req, resp):
        started = self._timer()
        result = await self._answer(req, resp)
        self._stats.answered(result, self._timer() - started)

    async def _answer(self, req, resp):
        """Set the answer on resp; return "allowed" or the reason of the refusal."""
        token, source = None, None
        try:
            token, source = request_credentials(req, self._max_token_bytes)
            from_cookie = source == "cookie"
            try:
                identity = self._verifier.verify(token)
            except UnknownKey as unknown:
                if not unknown.kid or unknown.keys is None:
                    raise
                # Only the token's own provider is asked again (rate-limited, one fetch at a time).
                await unknown.keys.refresh()
                identity = self._verifier.verify(token)
            if (providers := _providers(req)) and identity.provider not in providers:
                # The location accepts other providers only (`set $jwtgate_providers`): as unknown as any issuer.
                raise TokenRejected("wrong_issuer")
            # The verdict may come from the cache; the proof is checked on every request.
            await self._check_binding(req, token, source, identity)
            requirements = _requirements(req)
            if (from_cookie and req.get_header("X-Original-Method", default="GET") not in _SAFE_METHODS
                    and not same_origin(req.get_header("X-Jwtgate-Origin"), req.get_header("X-Jwtgate-Self-Origin"),
                                        self._allowed_origins)):
                raise TokenRejected("cross_site_request")
            if requirements and authorization.unmet(identity, requirements):
                return self._forbid(req, resp, requirements, token)
            # Every header is computed before any is set: a failure here leaves no identity behind.
            headers = self._allowed_headers(req, identity, source)
        except TokenRejected as rejected:
            return self._deny(req, resp, rejected.reason, token, source, getattr(rejected, "detail", None))
        except authorization.InvalidRequirement:
            # A location's requirement we cannot read: nobody is allowed there.
            log.error("invalid requirement in the Nginx configuration", extra={"request_id": self._request_id(req)})
            return self._forbid(req, resp, authorization.Requirements(), token)
        except Exception:
            # Fail closed: whatever broke, this request is not authenticated.
            log.exception("verify failed", extra={"request_id": self._request_id(req)})
            return self._deny(req, resp, "internal_error", token, source)
        resp.status = falcon.HTTP_200
        resp.set_headers(headers)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "verify allowed",
                extra={"result": "allowed", "user": identity.sub, "token_fp": fingerprint(token),
                       "request_id": self._request_id(req)},
            )
        return "allowed"

    def _allowed_headers(self, req, identity, source):
        """[(name, value)] of an allowed answer: the identity, the assertion, Cache-Control."""
        headers = [(header, ",".join(identity.values(claim))) for claim, header in self._claim_headers]
        if identity.claims is not None:
            headers.append((CLAIMS_HEADER, identity.claims))
        if self._assertions is not None:
            method, uri = req.get_header("X-Original-Method", default=""), req.get_header("X-Original-URI", default="")
            headers.append(("X-Jwtgate-Assertion", self._assertions.sign(identity, method, uri)))
        # Only an allowed verdict may be stored, and only by the optional Nginx micro-cache, which keys on
        # the Authorization header and the location's requirements. So only a plain Bearer header's: not
        # a cookie's (no Authorization, one key for everyone), not a DPoP-bound token's (its verdict holds
        # for one proof, i.e. one request), not one with an assertion (it names the method and URI).
        cacheable = (self._verdict_max_age and source == "bearer" and identity.jkt is None
                     and self._assertions is None)
        headers.append(("Cache-Control", micro_cache_control(identity.exp, self._clock(), self._verdict_max_age)
                        if cacheable else "no-store"))
        if source == "dpop":
            headers.extend(self._dpop_nonce())
        return headers

    def _dpop_nonce(self):
        """RFC 9449 section 9: with nonces on, every DPoP answer hands out the current one (else nothing)."""
        nonces = self._dpop.nonces if self._dpop is not None else None
        return [] if nonces is None else [("DPoP-Nonce", nonces.current())]

    on_head = on_get

    async def _check_binding(self, req, token, source, identity):
        """RFC 9449 section 7: a bound token needs the DPoP scheme and a valid proof; an unbound one, Bearer."""
        if identity.jkt is None:
            if source == "dpop":
                raise TokenRejected("dpop_unbound")
            return
        # Section 7.2: a DPoP-bound token presented as a bearer token (or a cookie) is refused.
        if source != "dpop" or self._dpop is None:
            raise TokenRejected("dpop_required")
        await self._dpop.check(req.get_header("DPoP"), method=req.get_header("X-Original-Method"),
                               uri=req.get_header("X-Original-URI"), access_token=token, jkt=identity.jkt)

    def _deny(self, req, resp, reason, token, source=None, detail=None):
        resp.status = falcon.HTTP_401
        dpop = source == "dpop" or reason in _DPOP_REASONS
        resp.set_header("WWW-Authenticate", (self._dpop_challenges if dpop else self._challenges)[reason])
        resp.set_header("X-Auth-Error", reason)
        resp.set_header("Cache-Control", "no-store")
        if dpop:
            resp.set_headers(self._dpop_nonce())
        log.info(
            "verify denied",
            extra={"result": "denied", "reason": reason, "request_id": self._request_id(req),
                   "token_fp": fingerprint(token) if token else None, "error": detail},
        )
        return reason

    def _forbid(self, req, resp, requirements, token):
        # RFC 6750 section 3.1: 403 with insufficient_scope, naming the scope needed.
        value = f'{self._challenges["insufficient_scope"]}'
        if requirements.scopes:
            value += f', scope="{" ".join(requirements.scopes)}"'
        resp.status = falcon.HTTP_403
        resp.set_header("WWW-Authenticate", value)
        resp.set_header("X-Auth-Error", "insufficient_scope")
        resp.set_header("Cache-Control", "no-store")
        log.info(
            "verify forbidden",
            extra={"result": "forbidden", "reason": "insufficient_scope", "request_id": self._request_id(req),
                   "token_fp": fingerprint(token)},
        )
        return "insufficient_scope"

    @staticmethod
    def _request_id(req):
        value = req.get_header("X-Request-Id")
        return value if value and _REQUEST_ID.fullmatch(value) else None


class MetadataDocument:
    """GET /.well-known/oauth-protected-resource[/<path>]: the RFC 9728 metadata, public (Nginx passes it on)."""

    # Seconds a client may keep the document: it changes only when the validator restarts with new settings.
    MAX_AGE = 300

    def __init__(self, metadata):
        # validator.metadata.ResourceMetadata; None without VALIDATOR_PUBLIC_ORIGINS, so nothing to serve.
        self._metadata = metadata

    async def on_get(self, req, resp, path=""):
        document = None
        if self._metadata is not None:
            document = self._metadata.document(f"/{path}" if path else "")
        if document is None:
            resp.status = falcon.HTTP_404
            resp.media = {"error": "not_found", "message": "Not found"}
            resp.set_header("Cache-Control", "no-store")
            return
        resp.media = document
        resp.set_header("Cache-Control", f"max-age={self.MAX_AGE}")

    on_head = on_get


class AssertionKeys:
    """GET /assertion-jwks.json: the public key backends verify assertions with."""

    def __init__(self, signer):
        self._document = signer.jwks()

    async def on_get(self, req, resp):
        resp.media = self._document


class Health:
    """GET /healthz: liveness, and how many keys this worker holds."""

    def __init__(self, keys):
        self._keys = keys

    async def on_get(self, req, resp):
        resp.media = {"status": "ok", "keys": len(self._keys)}


class Ready:
    """GET /readyz: 200 when this worker could allow a request (a provider holds a key, the revocation set
    is fresh), else 503 naming what is missing. For readiness probes: a worker that is alive but not
    ready refuses every token (401), which a load balancer should not send users to.

    A provider without keys is named (`providers_without_keys`) but keeps the worker ready while another
    has keys: taking the worker away would refuse the other providers' tokens too. A stale revocation
    set likewise, while a provider outside the store (`revocations = false`) holds a key: its tokens still pass.
    """

    def __init__(self, providers, revocations):
        self._providers = providers
        self._revocations = revocations

    async def on_get(self, req, resp):
        problems = []
        if not len(self._providers):
            problems.append("no_keys")
        without_keys = self._providers.without_keys()
        stale = self._revocations.stale()
        if stale and not self._providers.unrevoked - set(without_keys):
            problems.append("revocations_stale")
        resp.status = falcon.HTTP_503 if problems else falcon.HTTP_200
        resp.media = {"status": "not_ready" if problems else "ready", "keys": len(self._providers),
                      "problems": problems, "providers_without_keys": without_keys, "revocations_stale": stale}
