"""The signed identity assertion: made by the validator, required and checked by the sample backend."""

import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws

from tests.conftest import start_stack


AUDIENCE = "jwtgate-backend"


@pytest.fixture(scope="module")
def asserted(tmp_path_factory):
    running = start_stack(tmp_path_factory, "assertion", VALIDATOR_ASSERTION_AUDIENCE=AUDIENCE,
                          BACKEND_ASSERTION_AUDIENCE=AUDIENCE)
    yield running
    running.close()


@pytest.fixture(scope="module")
def backend(asserted):
    """A client straight to the backend's socket, as an attacker inside the network would be."""
    transport = httpx.HTTPTransport(uds=asserted.stack.socket("backend"))
    with httpx.Client(transport=transport, base_url="http://backend", timeout=10) as client:
        yield client


def sign(asserted, key=None, kid=None, **overrides):
    """An assertion signed with the stack's own assertion key (or another), with claims overridden."""
    directory = asserted.stack.data_dir / "assertion"
    if key is None:
        key = serialization.load_pem_private_key((directory / "es256.pem").read_bytes(), password=None)
        kid = json.loads((directory / "jwks.json").read_text())["keys"][0]["kid"]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    now = int(time.time())
    claims = {"iss": "jwtgate-gateway", "aud": AUDIENCE, "sub": asserted.username, "roles": ["user"],
              "scope": "orders:read", "method": "GET", "uri": "/api/protected/a", "iat": now, "exp": now + 30,
              "jti": "j"} | overrides
    return jws.sign(claims, jwk.construct(pem, "ES256"), algorithm="ES256",
                    headers={"kid": kid, "typ": "jwtgate-assertion+jwt"})


def direct(backend, assertion, path="/api/protected/a", method="GET", user="demo"):
    headers = {"X-User-Id": user}
    if assertion:
        headers["X-Jwtgate-Assertion"] = assertion
    return backend.request(method, path, headers=headers)


def test_requests_through_the_gateway_carry_a_valid_assertion(asserted):
    token = asserted.login()
    for method in ("GET", "POST"):
        response = asserted.client.request(method, "/api/protected/orders?x=1",
                                           headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["userId"] == asserted.username


def test_validator_publishes_the_public_key(asserted):
    transport = httpx.HTTPTransport(uds=asserted.stack.socket("validator"))
    with httpx.Client(transport=transport, base_url="http://validator") as client:
        keys = client.get("/assertion-jwks.json").json()["keys"]
    assert [key["kty"] for key in keys] == ["EC"] and "d" not in keys[0]
    assert (asserted.stack.data_dir / "assertion" / "es256.pem").stat().st_mode & 0o777 == 0o600


def test_the_stacks_own_assertion_is_accepted_directly(asserted, backend):
    assert direct(backend, sign(asserted, sub="demo")).status_code == 200


@pytest.mark.parametrize("case", ["missing", "other key", "other key, our kid", "expired", "future", "other audience",
                                  "other method",
                                  "other path", "other user", "garbage", "hs256"])
def test_backend_refuses_requests_without_a_valid_assertion(asserted, backend, case):
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    assertion = {
        "missing": None,
        "other key": sign(asserted, key=other, kid="forged", sub="demo"),
        "other key, our kid": sign(asserted, key=other, kid=json.loads(
            (asserted.stack.data_dir / "assertion" / "jwks.json").read_text())["keys"][0]["kid"], sub="demo"),
        "expired": sign(asserted, sub="demo", iat=now - 100, exp=now - 60),
        "future": sign(asserted, sub="demo", iat=now + 120, exp=now + 150),
        "other audience": sign(asserted, sub="demo", aud="another-service"),
        "other method": sign(asserted, sub="demo", method="POST"),
        "other path": sign(asserted, sub="demo", uri="/api/protected/b"),
        "other user": sign(asserted, sub="admin"),
        "garbage": "a.b.c",
        "hs256": jws.sign({"sub": "demo"}, "s" * 32, algorithm="HS256"),
    }[case]
    response = direct(backend, assertion)
    assert response.status_code == 401
    assert "assertion" in response.text
