"""CORS through the real Nginx: preflight without a token when the origin is allowed, never a bypass."""

import pytest

from tests.conftest import start_stack


ALLOWED = "https://app.example"


@pytest.fixture(scope="module")
def cors(tmp_path_factory):
    running = start_stack(tmp_path_factory, "cors", NGINX_CORS_ORIGIN_REGEX=r"^https://app\.example$")
    yield running
    running.close()


def preflight(running, path, origin=ALLOWED, method="POST"):
    headers = {"Origin": origin, "Access-Control-Request-Method": method,
               "Access-Control-Request-Headers": "authorization"}
    return running.client.options(path, headers=headers)


@pytest.mark.parametrize("path", ["/api/protected/", "/api/admin/x", "/api/orders/1"])
def test_preflight_from_an_allowed_origin_needs_no_token(cors, path):
    before = len(cors.backend_hits())
    response = preflight(cors, path)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert {"Authorization", "DPoP"} <= set(response.headers["access-control-allow-headers"].split(", "))
    assert len(cors.backend_hits()) == before


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.evil", "null"])
def test_preflight_from_another_origin_is_not_answered(cors, origin):
    response = preflight(cors, "/api/protected/", origin=origin)
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("headers", [{}, {"Origin": ALLOWED}, {"Access-Control-Request-Method": "POST"}])
def test_plain_options_is_no_bypass(cors, headers):
    before = len(cors.backend_hits())
    assert cors.client.options("/api/protected/", headers=headers).status_code == 401
    assert len(cors.backend_hits()) == before


@pytest.mark.parametrize("token, status", [(None, 401), ("bad.to.ken", 401), ("user", 403)])
def test_errors_carry_cors_headers(cors, token, status):
    headers = {"Origin": ALLOWED}
    if token:
        headers["Authorization"] = f"Bearer {cors.login() if token == 'user' else token}"
    response = cors.client.get("/api/admin/" if token == "user" else "/api/protected/", headers=headers)
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in response.headers["vary"].lower()
    # A script may read the challenge and a DPoP nonce (RFC 9449 section 9).
    assert response.headers["access-control-expose-headers"] == "WWW-Authenticate, DPoP-Nonce"


def test_no_expose_headers_for_another_origin(cors):
    response = cors.client.get("/api/protected/", headers={"Origin": "https://evil.example"})
    assert response.status_code == 401 and "access-control-expose-headers" not in response.headers


def test_success_carries_cors_headers_only_for_allowed_origins(cors):
    token = cors.login()
    allowed = cors.client.get("/api/protected/", headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    other = cors.client.get("/api/protected/", headers={"Origin": "https://evil.example",
                                                         "Authorization": f"Bearer {token}"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


def test_cors_is_off_by_default(gateway):
    response = preflight(gateway, "/api/protected/")
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers
