"""Where a provider's keys are: its OpenID Connect Discovery 1.0 document or RFC 8414 metadata, checked."""

import json
import urllib.parse
from dataclasses import dataclass

from jwtgate import fetch as fetching

OPENID = "openid-configuration"
OAUTH = "oauth-authorization-server"
KINDS = (OPENID, OAUTH)


class DiscoveryError(ValueError):
    """A metadata document (or the issuer it was asked for) is not acceptable; the message says why."""


@dataclass(frozen=True)
class Metadata:
    """A checked metadata document: its issuer, its jwks_uri, the whole document and its Cache-Control max-age."""

    issuer: str
    jwks_uri: str
    document: dict
    max_age: int | None = None


def check_issuer(issuer, *, allow_http=False):
    """Refuse an issuer that cannot be one (OpenID Connect Discovery 1.0 section 2, RFC 8414 section 2)."""
    try:
        parts = fetching.check_url(issuer, allow_http=allow_http)
    except fetching.FetchError as error:
        raise DiscoveryError(f"issuer {error}") from None
    if parts.query:
        raise DiscoveryError(f"issuer {fetching.describe(issuer)} has a query")
    return issuer


def metadata_url(issuer, kind=OPENID):
    """The metadata URL of an issuer.

    OpenID (Discovery section 4.1): the issuer, without a terminating "/", then /.well-known/openid-configuration.
    RFC 8414 section 3.1: /.well-known/oauth-authorization-server goes between the host and the issuer's
    path (its terminating "/" removed): https://idp.example/tenant -> .../.well-known/oauth-authorization-server/tenant.
    """
    if kind not in KINDS:
        raise DiscoveryError(f"unknown metadata kind {kind!r}: {' or '.join(KINDS)}")
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    well_known = f"{path}/.well-known/{OPENID}" if kind == OPENID else f"/.well-known/{OAUTH}{path}"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, well_known, "", ""))


def _unique(pairs):
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DiscoveryError("duplicate member")
    return document


def parse_metadata(body, issuer, *, allow_http=False, max_age=None):
    """Check a metadata document fetched for `issuer`; return its Metadata or raise DiscoveryError."""
    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=_unique)
    except DiscoveryError as error:
        raise DiscoveryError(f"metadata is not acceptable JSON: {error}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DiscoveryError("metadata is not JSON") from None
    if not isinstance(document, dict):
        raise DiscoveryError("metadata is not a JSON object")
    # OpenID Connect Discovery 1.0 section 4.3, RFC 8414 section 3.3: exactly the issuer asked for,
    # so that one provider's document cannot name another's keys.
    if document.get("issuer") != issuer:
        shown = document.get("issuer")
        shown = fetching.describe(shown) if isinstance(shown, str) else type(shown).__name__
        raise DiscoveryError(f"metadata names issuer {shown}, not {fetching.describe(issuer)}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise DiscoveryError("metadata has no jwks_uri")
    try:
        fetching.check_url(jwks_uri, allow_http=allow_http)
    except fetching.FetchError as error:
        raise DiscoveryError(f"jwks_uri {error}") from None
    return Metadata(issuer=issuer, jwks_uri=jwks_uri, document=document, max_age=max_age)


def discover(issuer, *, kind=OPENID, fetch=fetching.get, allow_http=False):
    """Fetch and check an issuer's metadata; return Metadata.

    `fetch(url)` returns a jwtgate.fetch.Response (bind its CA bundle, proxies and bounds with
    functools.partial). Raises FetchError when the document cannot be fetched, DiscoveryError when it
    is not acceptable.
    """
    check_issuer(issuer, allow_http=allow_http)
    url = metadata_url(issuer, kind)
    response = fetch(url)
    if response.status != 200:
        raise DiscoveryError(f"{fetching.describe(url)}: status {response.status}")
    try:
        return parse_metadata(response.body, issuer, allow_http=allow_http, max_age=response.max_age())
    except DiscoveryError as error:
        raise DiscoveryError(f"{fetching.describe(url)}: {error}") from None
