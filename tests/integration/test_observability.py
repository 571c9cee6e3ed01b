"""Observability through the real stack: Prometheus metrics summed over several workers on an internal
listener only, one request id in every service's log, and no secret in any log."""

import json
import re
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jwtgate.loopback import http_get
from tests.conftest import start_stack
from tests.services import free_port
from tests.minting import RsaSigner, claims, rs256


WRONG_PASSWORD = "Wrong-Password-Marker-6d1f0b"


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """Several workers per service, and the metrics listener on a loopback TCP port."""
    port = free_port()
    running = start_stack(tmp_path_factory, "observed", VALIDATOR_WORKERS="3", AUTH_WORKERS="2",
                          JWTGATE_METRICS_LISTEN=f"127.0.0.1:{port}")
    running.metrics = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
    yield running
    running.metrics.close()
    running.close()


@pytest.fixture(scope="module")
def signer(observed):
    kid = observed.client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    return RsaSigner.from_pem(observed.private_key_pem(), kid)


@pytest.fixture(scope="module")
def issued(observed):
    return observed.login()


def scrape(running, service):
    """{(sample name, labels as a sorted tuple): value} from the internal listener."""
    response = running.metrics.get(f"/metrics/{service}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_validator_metrics_sum_every_worker(observed, signer):
    token = observed.login()
    now = int(time.time())
    expired = rs256(signer, claims(now, iss=observed.issuer, iat=now - 2000, exp=now - 1000))
    before = scrape(observed, "validator")
    for _ in range(30):
        assert observed.client.get("/api/protected/", headers=bearer(token)).status_code == 200
    for _ in range(5):
        assert observed.client.get("/api/protected/", headers=bearer(expired)).status_code == 401
        assert observed.client.get("/api/protected/", headers=bearer("not-a-jwt")).status_code == 401

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Three workers answered these; /metrics, served by any one of them, counts them all once
    # each worker has flushed its counts (every second).
    deadline = time.monotonic() + 10
    after = scrape(observed, "validator")
    while delta("validator_verify_duration_seconds_count") < 40 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = scrape(observed, "validator")
    assert delta("validator_verify_requests_total", result="allowed") == 30
    assert delta("validator_verify_requests_total", result="expired") == 5
    assert delta("validator_verify_requests_total", result="malformed") == 5
    assert delta("validator_verify_duration_seconds_count") == 40
    assert delta("validator_cache_hits_total") + delta("validator_cache_misses_total") == 40
    assert delta("validator_cache_hits_total") >= 30 - 3   # at most one miss per worker for the valid token
    assert value(after, "validator_jwks_keys", provider="jwtgate") >= 1
    assert ("validator_jwks_age_seconds", (("provider", "jwtgate"),)) in after
    assert value(after, "validator_jwks_age_seconds", provider="jwtgate") >= 0
    assert ("validator_jwks_fetch_failures_total", (("provider", "jwtgate"),)) in after
    # Every result has a series from the start, so dashboards never see a gap.
    for result in ("revoked", "invalid_signature", "unknown_key"):
        assert ("validator_verify_requests_total", (("result", result),)) in after


def test_cache_size_gauge_is_reported(observed):
    observed.client.get("/api/protected/", headers=bearer(observed.login()))
    # Workers refresh their gauges every few seconds: wait (bounded) for one to report.
    deadline = time.monotonic() + 30
    while value(scrape(observed, "validator"), "validator_cache_entries") < 1:
        assert time.monotonic() < deadline, "validator_cache_entries never reported an entry"
        time.sleep(0.5)


def test_auth_api_counts_logins_by_outcome(observed):
    before = scrape(observed, "auth_api")
    observed.login()
    observed.client.post("/api/auth/login", json={"username": observed.username, "password": WRONG_PASSWORD})
    observed.client.post("/api/auth/login", json={"username": "no-such-user", "password": WRONG_PASSWORD})
    after = scrape(observed, "auth_api")
    for outcome in ("ok", "wrong_password", "unknown_user"):
        assert value(after, "auth_api_logins_total", outcome=outcome) - \
            value(before, "auth_api_logins_total", outcome=outcome) == 1, outcome


@pytest.mark.parametrize("path", [
    "/metrics", "/metrics/validator", "/metrics/auth_api", "/api/auth/../metrics", "/api/auth/%2e%2e/metrics",
    "/api/auth/..%2fmetrics", "/api/public/../../metrics", "/.well-known/../metrics", "/api/protected/../metrics",
    "/_jwtgate/verify/../../metrics",
])
def test_metrics_are_not_on_the_public_listener(observed, issued, path):
    response = observed.client.get(path, headers=bearer(issued))
    assert response.status_code in (400, 404), response.text
    assert "_total" not in response.text and "# HELP" not in response.text


def test_metrics_listener_serves_nothing_else(observed):
    for path in ("/", "/api/public/", "/api/auth/login", "/metrics/backend", "/verify"):
        assert observed.metrics.get(path).status_code == 404, path


def test_default_metrics_listener_is_a_unix_socket_in_the_data_dir(gateway):
    socket = gateway.stack.run_dir / "metrics.sock"
    status, body = http_get("http://localhost/metrics/validator", unix_socket=str(socket), timeout=5)
    assert status == 200 and b"validator_verify_requests_total" in body


def _wait_for_line(running, service, needle):
    deadline = time.monotonic() + 10
    while needle not in running.stack.log_path(service).read_text():
        assert time.monotonic() < deadline, f"{needle} never appeared in the {service} log"
        time.sleep(0.05)


def test_one_request_id_in_nginx_and_every_service(observed, issued):
    login_id = observed.request_id_of("/api/auth/login", lambda: observed.client.post(
        "/api/auth/login", json={"username": "id-probe", "password": WRONG_PASSWORD}))
    _wait_for_line(observed, "auth_api", f'"request_id":"{login_id}"')

    backend_id = observed.request_id_of("/api/protected/ids", lambda: observed.client.get(
        "/api/protected/ids", headers=bearer(issued)))
    _wait_for_line(observed, "backend", f'"request_id":"{backend_id}"')

    denied_id = observed.request_id_of("/api/protected/denied", lambda: observed.client.get(
        "/api/protected/denied", headers=bearer("not-a-jwt")))
    _wait_for_line(observed, "validator", f'"request_id":"{denied_id}"')
    assert re.fullmatch(r"[0-9a-f]{32}", denied_id)


def test_a_client_cannot_choose_the_logged_request_id(observed, issued):
    spoofed_id = observed.request_id_of("/api/protected/spoofed-id", lambda: observed.client.get(
        "/api/protected/spoofed-id", headers={**bearer(issued), "X-Request-Id": "forged-id"}))
    _wait_for_line(observed, "backend", f'"request_id":"{spoofed_id}"')
    assert "forged-id" not in observed.stack.log_path("backend").read_text()


def test_logs_of_real_traffic_carry_no_token_password_or_key(observed, signer):
    """Logins, refreshes, logouts, lockouts, refusals and metrics scrapes; then every log line is read."""
    secrets = [observed.password, observed.admin_password, WRONG_PASSWORD]
    client = observed.client
    for username, password in ((observed.username, observed.password), (observed.admin, observed.admin_password)):
        body = client.post("/api/auth/login", json={"username": username, "password": password}).json()
        secrets += [body["access_token"], body["refresh_token"]]
        refreshed = client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]}).json()
        secrets += [refreshed["access_token"], refreshed["refresh_token"]]
        # The spent refresh token again: reuse detection ends the session.
        client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
        client.get("/api/protected/", headers=bearer(refreshed["access_token"]))
        client.get("/api/public/?access_token=" + refreshed["access_token"])
        client.post("/api/auth/logout", headers=bearer(refreshed["access_token"]),
                    json={"refresh_token": refreshed["refresh_token"]})
        client.get("/api/protected/", headers=bearer(refreshed["access_token"]))
    now = int(time.time())
    forged = [rs256(signer, claims(now, iss=observed.issuer, iat=now - 2000, exp=now - 1000)),
              rs256(RsaSigner(kid=signer.kid), claims(now, iss=observed.issuer)),
              rs256(signer, claims(now, iss=observed.issuer, deep=json.loads("[" * 12 + "]" * 12)))]
    secrets += forged
    for token in forged:
        client.get("/api/protected/", headers=bearer(token))
    for _ in range(6):
        client.post("/api/auth/login", json={"username": "lock-probe", "password": WRONG_PASSWORD})
    scrape(observed, "validator")
    scrape(observed, "auth_api")

    pem_lines = [line for line in signer.pem.decode().splitlines() if "-----" not in line]
    # Signatures alone are as good as the token to a log reader trying to replay: none may appear either.
    secrets += [token.rsplit(".", 1)[1] for token in secrets if token.count(".") == 2]
    time.sleep(0.2)   # let the last lines reach the files; the assertions below are not about time
    logs = {path.name: path.read_text(errors="replace") for path in observed.stack.log_dir.glob("*.log")}
    assert {"validator.log", "auth_api.log", "backend.log", "nginx-access.log"} <= set(logs)
    for name, text in logs.items():
        for secret in secrets + pem_lines:
            assert secret not in text, f"{name} holds a secret ({secret[:6]}...)"
        assert "eyJ" not in text, f"{name} holds something base64url-JSON-shaped, like a token"
        assert "BEGIN" not in text and "PRIVATE" not in text, name
