"""RFC 8414 authorization server metadata: how a verifier that knows only our issuer finds our keys."""

import re
import urllib.parse

from jwtgate import discovery
from jwtgate.dpop import ALGORITHMS as DPOP_ALGORITHMS

JWKS_PATH = "/.well-known/jwks.json"
# The issuer's path becomes a route (RFC 8414 section 3.1 inserts it after the well-known name): RFC 3986
# unreserved characters and "/" only, so no percent-encoding or route template can make it another path.
_PATH = re.compile(r"[A-Za-z0-9._~/-]*")


def server_metadata(issuer):
    """(path, document): where the metadata of `issuer` is served and what it says.

    Raises ValueError saying why when the issuer is not an http(s) URL without query or fragment
    (RFC 8414 section 2), which no metadata URL can be made from.
    """
    try:
        discovery.check_issuer(issuer, allow_http=True)
    except discovery.DiscoveryError:
        raise ValueError("AUTH_ISSUER is not an https:// or http:// URL without query or fragment"
                         " (RFC 8414 section 2)") from None
    parts = urllib.parse.urlsplit(issuer)
    if not _PATH.fullmatch(parts.path):
        raise ValueError("AUTH_ISSUER's path has characters other than A-Z a-z 0-9 . _ ~ / -")
    path = urllib.parse.urlsplit(discovery.metadata_url(issuer, discovery.OAUTH)).path
    document = {
        "issuer": issuer,
        # The gateway serves the key set at the root of the origin it serves the metadata at (the
        # issuer's, RFC 8414 section 3.1), whatever the issuer's path.
        "jwks_uri": urllib.parse.urlunsplit((parts.scheme, parts.netloc, JWKS_PATH, "", "")),
        # Section 2 requires this member; the login API is not an authorization endpoint, so it supports none.
        "response_types_supported": [],
        # Section 2: left out, this would mean authorization_code and implicit, neither of which exists here.
        # Login and refresh take JSON, not an RFC 6749 section 4 or 6 grant at a token endpoint.
        "grant_types_supported": [],
        # RFC 9449 section 5.1: the proofs login and refresh accept (auth_api.dpop).
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
    return path, document
