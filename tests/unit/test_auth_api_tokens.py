"""Minting access tokens: header, claims and signature."""

import pytest
from jose import jwk, jws, jwt

from auth_api.config import Settings
from auth_api.keys import KeyRing
from auth_api.tokens import mint_access_token


NOW = 1_700_000_000.9


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    return KeyRing.open(Settings(data_dir=str(tmp_path_factory.mktemp("keys"))))


def _claims(token, key, algorithm):
    return jwt.decode(token, key, algorithms=[algorithm], audience="api", issuer="iss", options={"verify_exp": False})


def test_rs256_token(keyring):
    settings = Settings(data_dir="/unused", issuer="iss", audience="api", access_token_ttl_seconds=300)
    token, claims = mint_access_token(
        keyring, settings, subject="alice", roles=("admin",), scope="orders:read", now=lambda: NOW
    )
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "at+jwt", "kid": keyring.active.kid}
    (public,) = keyring.jwks()["keys"]
    decoded = _claims(token, jwk.construct(public, "RS256"), "RS256")
    assert decoded == claims
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "roles", "scope"}
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("iss", "api", "alice")
    assert (claims["iat"], claims["exp"]) == (1_700_000_000, 1_700_000_300)
    assert (claims["roles"], claims["scope"]) == (["admin"], "orders:read")
    assert len(claims["jti"]) >= 22


def test_each_token_has_its_own_jti(keyring):
    settings = Settings(data_dir="/unused")
    first = mint_access_token(keyring, settings, subject="a", roles=[], scope="", now=lambda: NOW)[1]
    second = mint_access_token(keyring, settings, subject="a", roles=[], scope="", now=lambda: NOW)[1]
    assert first["jti"] != second["jti"]
    assert (first["roles"], first["scope"]) == ([], "")


def test_hs256_token_has_no_kid_and_verifies_with_the_secret():
    secret = b"k" * 32
    settings = Settings(data_dir="/unused", issuer="iss", audience="api", hs256_secret=secret)
    ring = KeyRing.from_secret(secret)
    token, claims = mint_access_token(ring, settings, subject="bob", roles=[], scope="", now=lambda: NOW)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    assert _claims(token, secret, "HS256") == claims
    with pytest.raises(jws.JWSError):
        jws.verify(token, b"x" * 32, algorithms=["HS256"])
