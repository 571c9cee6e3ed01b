"""Minting signed access tokens."""

import secrets

from jose import jws

# RFC 9068 §2.1: access tokens say so in `typ`, so an ID token or other JWT cannot be passed off as one.
ACCESS_TOKEN_TYPE = "at+jwt"


def mint_access_token(keyring, settings, *, subject, roles, scope, now, expires_in=None, session=None, jkt=None):
    """Sign an access token for subject; return (token, claims). now is a clock returning seconds.

    expires_in (seconds from now) replaces the configured lifetime; zero or less gives a token that
    has already expired, issued one configured lifetime before its exp so that exp > iat still holds.
    """
    signing = keyring.active
    current = int(now())
    lifetime = settings.access_token_ttl_seconds
    expires_at = current + (lifetime if expires_in is None else int(expires_in))
    issued_at = current if expires_at > current else expires_at - lifetime
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "iat": issued_at,
        "exp": expires_at,
        "jti": secrets.token_urlsafe(16),
        "roles": list(roles),
        "scope": scope,
    }
    if session is not None:
        # The login session: logout and refresh-token theft revoke every access token carrying it.
        claims["sid"] = session
    if jkt is not None:
        # RFC 9449 section 6.1: bound to the client's DPoP key, by its RFC 7638 thumbprint.
        claims["cnf"] = {"jkt": jkt}
    headers = {"typ": ACCESS_TOKEN_TYPE}
    if signing.kid is not None:
        headers["kid"] = signing.kid
    token = jws.sign(claims, signing.key, headers=headers, algorithm=signing.algorithm)
    return token, claims
