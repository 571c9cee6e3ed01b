"""Protected resource metadata (RFC 9728): which authorization servers issue the gateway's tokens."""

import re
import urllib.parse

# RFC 9728 section 3: the well-known path; a resource's own path follows it (section 3.1).
WELL_KNOWN = "/.well-known/oauth-protected-resource"
# The paths we describe: segments of RFC 3986 unreserved characters, optionally a final slash. Anything
# else (percent-encoded bytes, empty or dot segments) names no resource of ours.
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")
_MAX_PATH = 256
# RFC 6749 section 3.3: a scope token.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")


def is_issuer_url(issuer):
    """True when issuer is an RFC 8414 section 2 issuer identifier: an http(s) URL without query or fragment.

    Plain http is let through: a provider's entry already decides whether its http issuer is allowed.
    """
    parts = urllib.parse.urlsplit(issuer)
    return parts.scheme in ("https", "http") and bool(parts.hostname) and not parts.query and not parts.fragment


class ResourceMetadata:
    """The RFC 9728 document of each resource under the gateway's public origin, built once."""

    def __init__(self, origin, authorization_servers, *, scopes=(), dpop_algorithms=()):
        self._origin = origin
        # Section 5.1: what every 401 challenge names, so a client needs no configuration to find it.
        self.url = origin + WELL_KNOWN
        fields = {}
        if authorization_servers:
            fields["authorization_servers"] = list(authorization_servers)
        if scopes:
            fields["scopes_supported"] = list(scopes)
        # RFC 6750 section 2.1 only: the access-token cookie is for our own login page, not for clients.
        fields["bearer_methods_supported"] = ["header"]
        if dpop_algorithms:
            # RFC 9449 section 5.2: bound tokens are accepted, plain bearer tokens too.
            fields["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
            fields["dpop_bound_access_tokens_required"] = False
        self._fields = fields

    def document(self, path=""):
        """The metadata of the resource at origin + path, or None when path names none."""
        if path and (len(path) > _MAX_PATH or not _PATH.fullmatch(path)
                     or any(segment in (".", "..") for segment in path.split("/"))):
            return None
        # Section 3.3: `resource` is exactly the identifier the well-known URL was made from.
        return {"resource": self._origin + path, **self._fields}
