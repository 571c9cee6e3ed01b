"""Failure through the real Nginx: the gateway fails closed and recovers by itself."""

import signal
import time

import pytest

from tests.conftest import start_stack


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A stack of its own, since these tests stop its processes."""
    running = start_stack(tmp_path_factory, "faults")
    yield running
    running.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_validator_down_fails_closed_and_recovers(faulty, sig):
    token = faulty.login()
    assert faulty.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    faulty.stack.stop_process("validator", sig)
    before = len(faulty.backend_hits())
    for headers in ({"Authorization": f"Bearer {token}"}, {}, {"X-User-Id": "admin"}):
        response = faulty.client.get("/api/protected/", headers=headers)
        assert response.status_code == 503
        assert response.json() == {"error": "auth_unavailable", "message": "Authentication service unavailable"}
        assert response.headers["retry-after"] == "5"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert len(faulty.backend_hits()) == before
    assert faulty.client.get("/api/public/").status_code == 200
    faulty.stack.start_process("validator")
    assert faulty.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_auth_api_down_keeps_tokens_valid(faulty):
    token = faulty.login()
    faulty.stack.stop_process("auth_api")
    try:
        response = faulty.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        login = faulty.client.post("/api/auth/login", json={"username": "demo", "password": "x" * 12})
        assert login.status_code == 503
        assert login.json() == {"error": "auth_unavailable", "message": "Authentication service unavailable"}
        assert login.headers["x-content-type-options"] == "nosniff"
    finally:
        faulty.stack.start_process("auth_api")
    time.sleep(0.1)
    assert faulty.login()
