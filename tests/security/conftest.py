"""Fixtures of the adversarial suite: the stack's own key, an attacker's keys, a trap for outbound fetches."""

import base64
import functools
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from tests.minting import RsaSigner, claims, rs256
from tests.security.forge import self_signed_certificate
from tests.security.gate import Gate, OutboundTrap


@pytest.fixture(scope="session")
def stack_jwk(gateway):
    """The stack's published signing key, fetched as any client would (the member matching its key file)."""
    private = RsaSigner.from_pem(gateway.private_key_pem(), "probe")
    members = gateway.client.get("/.well-known/jwks.json").json()["keys"]
    matching = [member for member in members if member.get("n") == private.jwk["n"]]
    assert len(matching) == 1 and matching[0]["alg"] == "RS256", members
    return matching[0]


@pytest.fixture(scope="session")
def stack_signer(gateway, stack_jwk):
    """The stack's real signing key (read from its data directory): forgeries that differ in one thing only."""
    return RsaSigner.from_pem(gateway.private_key_pem(), stack_jwk["kid"])


@pytest.fixture(scope="session")
def gate(gateway, stack_signer):
    """The gateway, with the key material and password no answer may ever contain."""
    pem_lines = [line for line in stack_signer.pem.decode().splitlines() if "-----" not in line]
    return Gate(gateway, secrets=[*pem_lines, gateway.password])


@pytest.fixture(scope="session")
def stack_claims(gateway):
    """tests.minting.claims with the stack's issuer, the gateway's URL: a claim set the gateway accepts."""
    return functools.partial(claims, iss=gateway.issuer)


@pytest.fixture
def mint(stack_signer, stack_claims):
    """A valid token of the stack's key now, with claim overrides (None removes a claim)."""
    return lambda **overrides: rs256(stack_signer, stack_claims(time.time(), **overrides))


@pytest.fixture(scope="module")
def issued_token(gateway):
    """A token issued by the auth API itself, through Nginx."""
    return gateway.login()


@pytest.fixture(scope="session")
def attacker():
    return RsaSigner(kid="attacker-key")


@pytest.fixture(scope="session")
def trap(attacker):
    """The attacker's web server on 127.0.0.1, serving their JWKS and certificate; it must never be called."""
    certificate = self_signed_certificate(attacker.private)
    documents = {
        "/jwks.json": json.dumps(attacker.jwks()).encode(),
        "/stack-kid-jwks.json": json.dumps({"keys": [dict(attacker.jwk, kid="stack")]}).encode(),
        "/cert.pem": certificate.public_bytes(serialization.Encoding.PEM),
    }
    with OutboundTrap(documents) as running:
        running.certificate_der_b64 = base64.b64encode(
            certificate.public_bytes(serialization.Encoding.DER)).decode()
        yield running
