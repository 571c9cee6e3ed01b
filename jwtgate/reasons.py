"""The reasons a token or request can be refused, and the exception that carries one."""


# Reason codes a denial can carry: (RFC 6750 error, description). Nginx's
# jwtgate-http.conf maps the same codes to client messages; a test keeps both lists equal.
REASONS = {
    "missing_token": (None, "Missing Authorization header"),
    "invalid_request": ("invalid_request", "Malformed Authorization header"),
    "malformed": ("invalid_token", "Malformed token"),
    "unsupported_header": ("invalid_token", "Unsupported token header"),
    "wrong_type": ("invalid_token", "Wrong token type"),
    "unsupported_algorithm": ("invalid_token", "Algorithm not allowed for this key"),
    "unknown_key": ("invalid_token", "Unknown signing key"),
    "invalid_signature": ("invalid_token", "Invalid signature"),
    "expired": ("invalid_token", "Token expired"),
    "not_yet_valid": ("invalid_token", "Token not yet valid"),
    "invalid_claims": ("invalid_token", "Invalid claims"),
    "wrong_issuer": ("invalid_token", "Wrong issuer"),
    "wrong_audience": ("invalid_token", "Wrong audience"),
    "revoked": ("invalid_token", "Token revoked"),
    "insufficient_scope": ("insufficient_scope", "Insufficient scope or role"),
    "cross_site_request": ("invalid_request", "Cross-site request refused"),
    "revocation_unavailable": ("invalid_token", "Revocation status unknown"),
    "internal_error": ("invalid_token", "Token could not be verified"),
    # RFC 9449 (DPoP): these denials carry a `DPoP` challenge, not a `Bearer` one.
    "dpop_required": ("invalid_token", "Token is DPoP-bound: send it with the DPoP scheme and a proof"),
    "dpop_unbound": ("invalid_token", "Token is not DPoP-bound: send it with the Bearer scheme"),
    "invalid_dpop_proof": ("invalid_dpop_proof", "Invalid DPoP proof"),
    "dpop_replayed": ("invalid_dpop_proof", "DPoP proof replayed"),
    # Section 9: the proof lacks a current server nonce; the answer carries one in DPoP-Nonce.
    "use_dpop_nonce": ("use_dpop_nonce", "Resource server requires nonce in DPoP proof"),
}


class TokenRejected(Exception):
    """A token or request was refused; `reason` is a key of REASONS."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class UnknownKey(TokenRejected):
    """The token names a `kid` its provider's key set lacks; refetching that set may help."""

    def __init__(self, kid, keys=None):
        super().__init__("unknown_key")
        self.kid = kid
        self.keys = keys
