"""Verdict cache integrity: a cached token vouches for itself only, and never outlives its exp."""

import base64
import json
import time

import pytest

from tests.conftest import start_stack
from tests.minting import RsaSigner, b64, claims, rs256
from tests.security.gate import PROTECTED, Gate


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def cached(gate, stack_signer, stack_claims):
    """A valid token that has just passed, so its verdict sits in the validator's cache."""
    token = rs256(stack_signer, stack_claims(time.time()))
    answer, hits = gate.send(token=token)
    assert answer.status == 200 and hits == [("GET", PROTECTED, "alice")]
    return token


def test_cached_token_with_an_impostor_signature(gate, cached, stack_signer):
    head, body, _ = cached.split(".")
    impostor = RsaSigner(kid=stack_signer.kid)
    gate.refused(token=f"{head}.{body}.{impostor.sign_input(f'{head}.{body}')}")


def test_cached_token_with_the_signature_of_another_cached_token(gate, cached, stack_signer, stack_claims):
    other = rs256(stack_signer, stack_claims(time.time(), sub="bob"))
    assert gate.send(token=other)[0].status == 200
    head, body, _ = cached.split(".")
    gate.refused(token=f"{head}.{body}.{other.split('.')[2]}")


def test_cached_token_with_a_tampered_payload(gate, cached):
    head, body, signature = cached.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    gate.refused(token=f"{head}.{b64(json.dumps(decoded | {'sub': 'admin'}))}.{signature}")


def test_cached_token_with_its_payload_reencoded_differently(gate, cached):
    head, body, signature = cached.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    respaced = b64(json.dumps(decoded, indent=1))
    gate.refused(token=f"{head}.{respaced}.{signature}")


def test_cached_token_with_one_signature_bit_flipped(gate, cached):
    head, body, signature = cached.split(".")
    flipped = signature[:100] + ALPHABET[ALPHABET.index(signature[100]) ^ 1] + signature[101:]
    gate.refused(token=f"{head}.{body}.{flipped}")


def test_cached_token_with_a_twin_spelling_of_its_signature(gate, cached):
    head, body, signature = cached.split(".")
    twin = signature[:-1] + ALPHABET[ALPHABET.index(signature[-1]) ^ 1]
    gate.refused(token=f"{head}.{body}.{twin}")


def test_cached_token_with_its_signature_truncated(gate, cached):
    head, body, signature = cached.split(".")
    gate.refused(token=f"{head}.{body}.{signature[:-4]}")


def test_claims_of_a_cached_token_reminted_expired(gate, cached, stack_signer, stack_claims):
    now = int(time.time())
    expired = rs256(stack_signer, stack_claims(now, iat=now - 4000, exp=now - 3000))
    gate.refused(token=expired)


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A stack of its own without clock leeway, so a token's exp can pass during the test."""
    running = start_stack(tmp_path_factory, "strict", VALIDATOR_LEEWAY_SECONDS="0")
    member = running.client.get("/.well-known/jwks.json").json()["keys"][0]
    yield running, RsaSigner.from_pem(running.private_key_pem(), member["kid"])
    running.close()


def test_cached_token_after_its_exp(strict):
    running, signer = strict
    gate = Gate(running)
    now = int(time.time())
    token = rs256(signer, claims(now, iss=running.issuer, iat=now, exp=now + 2))
    answer, hits = gate.send(token=token)
    assert answer.status == 200 and hits == [("GET", PROTECTED, "alice")]
    assert gate.send(token=token)[0].status == 200
    time.sleep(max(0.0, now + 2.2 - time.time()))
    answer = gate.refused(token=token)
    assert answer.json()["error"] == "expired"


def _login(gateway):
    response = gateway.client.post("/api/auth/login", json={"username": gateway.username,
                                                            "password": gateway.password})
    assert response.status_code == 200, response.text
    return response.json()


def test_cached_token_after_logout(gate, gateway):
    issued = _login(gateway)
    access = issued["access_token"]
    answer, hits = gate.send(token=access)
    assert answer.status == 200 and hits == [("GET", PROTECTED, gateway.username)]
    logout = gateway.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {access}"},
                                 json={"refresh_token": issued["refresh_token"]})
    assert logout.status_code == 204, logout.text
    # Revocations reach every validator worker by polling: wait (bounded) for the first refusal.
    deadline = time.monotonic() + 5
    while gate.send(token=access)[0].status == 200:
        assert time.monotonic() < deadline, "the logged-out token is still accepted after 5 s"
        time.sleep(0.1)
    for _ in range(8):
        assert gate.refused(token=access).json()["error"] == "revoked"


def test_refresh_token_used_as_access_token(gate, gateway):
    issued = _login(gateway)
    gate.refused(token=issued["refresh_token"])
