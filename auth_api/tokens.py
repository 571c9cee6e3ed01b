"""Minting signed access tokens."""

import secrets

from jose import jws

# RFC 9068 §2.1: access tokens say so in `typ`, so an ID token or other JWT cannot be passed off as one.
ACCESS_TOKEN_TYPE = "at+jwt"


def mint_access_token(keyring, settings, *, subject, roles, scope, now):
    """Sign an access token for subject; return (token, claims). now is a clock returning seconds."""
    signing = keyring.active
    issued_at = int(now())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "iat": issued_at,
        "exp": issued_at + settings.access_token_ttl_seconds,
        "jti": secrets.token_urlsafe(16),
        "roles": list(roles),
        "scope": scope,
    }
    headers = {"typ": ACCESS_TOKEN_TYPE}
    if signing.kid is not None:
        headers["kid"] = signing.kid
    token = jws.sign(claims, signing.key, headers=headers, algorithm=signing.algorithm)
    return token, claims
