"""Nginx hardening through the real stack: the login redirect's map, Nginx's own redirects, X-Accel-*, workers, logs."""

import http.server
import json
import os
import socketserver
import stat
import threading

import httpx
import pytest

from tests.conftest import children, start_stack

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def fresh(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10.0, follow_redirects=False) as client:
        yield client


def test_a_browser_request_is_still_sent_to_the_login_page(fresh):
    response = fresh.get("/api/protected/x?y=1", headers={"Accept": BROWSER_ACCEPT})
    assert (response.status_code, response.headers["location"]) == (302, "/login/?next=/api/protected/x?y=1")


@pytest.mark.parametrize("requested_with", [
    "|//evil.example/phish|",
    "|//evil.example/phish",
    "|/x|",
    "|",
    "x|//evil.example/|text/html",
    "XMLHttpRequest|//evil.example/phish|text/html",
    "|//evil.example/phish| text/html",
    "text/html",
    "a b c",
])
def test_x_requested_with_never_steers_the_login_redirect(fresh, requested_with):
    # Any X-Requested-With marks a script's request: the JSON 401, never a Location of the client's making.
    response = fresh.get("/api/protected/x", headers={"Accept": "text/html", "X-Requested-With": requested_with})
    assert response.status_code == 401, response.headers.get("location")
    assert "location" not in response.headers
    assert response.json()["error"] == "missing_token"


def test_a_real_xhr_gets_the_json_401(fresh):
    response = fresh.get("/api/protected/x", headers={"Accept": BROWSER_ACCEPT, "X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert "location" not in response.headers


@pytest.mark.parametrize("accept", ["|//evil.example/phish|text/html", "text/html|//evil.example/|", "|text/html|"])
def test_an_accept_header_with_the_separator_only_reaches_the_login_page(fresh, accept):
    response = fresh.get("/api/protected/x", headers={"Accept": accept})
    assert (response.status_code, response.headers["location"]) == (302, "/login/?next=/api/protected/x")


@pytest.mark.parametrize("method", ["GET", "|GET", "GET|x", "x y", ""])
def test_a_preflight_needs_an_allowed_origin_whatever_the_requested_method(fresh, method):
    # CORS is off on this gateway: no Access-Control-Request-Method makes OPTIONS a preflight.
    response = fresh.options("/api/protected/", headers={"Origin": "|https://evil.example|",
                                                         "Access-Control-Request-Method": method})
    assert response.status_code == 401


@pytest.mark.parametrize(("path", "location"), [
    ("/api/protected", "/api/protected/"),
    ("/api/public", "/api/public/"),
    ("/api/auth", "/api/auth/"),
    ("/login", "/login/"),
])
def test_nginx_redirects_name_a_path_never_the_clients_host(fresh, path, location):
    response = fresh.get(path, headers={"Host": "evil.example"})
    assert (response.status_code, response.headers["location"]) == (301, location)


class AccelBackend(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A backend that answers every request with X-Accel-Redirect to its `target`."""

    daemon_threads = True

    def __init__(self, path):
        self.target = "/healthz"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = json.dumps({"from": "backend"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Accel-Redirect", server.target)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(path, Handler)


@pytest.fixture(scope="module")
def accel(tmp_path_factory):
    """A stack whose backend asks Nginx, with X-Accel-Redirect, for another location."""
    running = start_stack(tmp_path_factory, "accel")
    token = running.login()
    path = running.stack.socket("backend")
    running.stack.stop_process("backend")
    if os.path.exists(path):
        os.unlink(path)
    server = AccelBackend(path)
    # As gunicorn's sockets: the directory decides who may connect (Nginx's workers, when we are root).
    os.chmod(path, 0o666)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield running, token, server
    server.shutdown()
    server.server_close()
    running.close()


@pytest.mark.parametrize("target", ["/healthz", "/_jwtgate/verify", "@jwtgate_forbidden"])
@pytest.mark.parametrize("path", ["/api/protected/x", "/api/public/"])
def test_a_backends_x_accel_redirect_is_not_followed(accel, path, target):
    running, token, server = accel
    server.target = target
    response = running.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"from": "backend"}
    assert "x-accel-redirect" not in response.headers


def _uids(pid):
    """Real, effective, saved and filesystem uid of a process."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return [int(value) for value in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def test_nginx_workers_never_run_as_root(gateway):
    workers = children(gateway.stack.processes["nginx"].pid)
    assert workers
    for pid in workers:
        assert 0 not in _uids(pid), pid
    # And they reach what they need: the login page, the validator and backend sockets, a body's temp file.
    assert gateway.client.get("/login/").status_code == 200
    token = gateway.login()
    assert gateway.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    upload = gateway.client.post("/api/protected/", content=b"x" * 200_000,
                                 headers={"Authorization": f"Bearer {token}"})
    assert upload.status_code < 500
    assert "Permission denied" not in gateway.stack.log_path("nginx-error").read_text()


@pytest.mark.parametrize("name", ["validator", "auth_api", "backend", "nginx", "nginx-access", "nginx-error"])
def test_log_files_are_private(gateway, name):
    assert stat.S_IMODE(gateway.stack.log_path(name).stat().st_mode) == 0o600
