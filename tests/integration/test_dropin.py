"""nginx/snippets/ in someone else's Nginx: examples/nginx/minimal.conf.template run by a second, real Nginx.

The stack's own Nginx only serves the login here. The second Nginx is laid out as /etc/nginx is
(nginx.conf, conf.d/, the snippets copied to jwtgate/), and the example gets nothing but its four
NGINX_* values: the validator's and the backend's sockets, a port and a log path.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from launcher.stack import NGINX_DIR, render
from tests.conftest import start_stack
from tests.services import free_port


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nginx" / "minimal.conf.template"
SPOOFED = {"X-User-Id": "mallory", "X-User-Roles": "admin", "X-User-Scopes": "orders:write",
           "X-User-Email": "mallory@example.com", "X-User-Tenant": "acme"}
READY_TIMEOUT = 30.0


class DropIn:
    """The second Nginx: its client, its logs, and a failure message that quotes its error log."""

    def __init__(self, prefix, url):
        self.prefix = prefix
        self.error_log = prefix / "logs" / "error.log"
        self.access_log = prefix / "logs" / "access.log"
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def get(self, path, token=None, **headers):
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.get(path, headers=headers)

    def explain(self, response):
        tail = self.error_log.read_text(errors="replace").splitlines()[-20:] if self.error_log.exists() else []
        return f"{response.status_code} {response.text!r}\n--- drop-in nginx error log ---\n" + "\n".join(tail)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory, "dropin-stack")
    yield running
    running.close()


def _configure(prefix, stack):
    """Lay out prefix as /etc/nginx with the example in conf.d/; return the nginx command line."""
    for directory in ("conf.d", "logs", "tmp"):
        (prefix / directory).mkdir()
    # What the README tells a user to do: copy nginx/snippets/ to /etc/nginx/jwtgate/.
    shutil.copytree(NGINX_DIR / "snippets", prefix / "jwtgate")
    error_log = prefix / "logs" / "error.log"
    # make run's main configuration: foreground, every path inside the prefix, workers as root
    # when we are root (they must open the stack's private sockets).
    (prefix / "nginx.conf").write_text(render((NGINX_DIR / "local" / "nginx.conf.template").read_text(), {
        "NGINX_PREFIX": str(prefix),
        "NGINX_WORKER_DIR": str(prefix),
        "NGINX_ERROR_LOG": str(error_log),
        "NGINX_WORKER_PROCESSES": "1",
        "NGINX_USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
    }))
    listen = f"127.0.0.1:{free_port()}"
    example = render(EXAMPLE.read_text(), {
        "NGINX_LISTEN": listen,
        "NGINX_VALIDATOR_ADDR": f"unix:{stack.stack.socket('validator')}",
        "NGINX_BACKEND_ADDR": f"unix:{stack.stack.socket('backend')}",
        "NGINX_ACCESS_LOG": str(prefix / "logs" / "access.log"),
    })
    assert "${" not in example, "the example uses a placeholder besides the four NGINX_* values"
    (prefix / "conf.d" / "minimal.conf").write_text(example)
    command = [stack.stack.nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(error_log)]
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t refused the example:\n{checked.stderr}"
    return command, f"http://{listen}"


def _stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def dropin(stack, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("dropin-nginx")
    command, url = _configure(prefix, stack)
    gateway = DropIn(prefix, url)
    with open(prefix / "logs" / "stdout.log", "ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"drop-in nginx exited with status {process.returncode}:\n"
                            f"{gateway.error_log.read_text(errors='replace')}")
            try:
                if gateway.client.get("/api/public/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"drop-in nginx not ready after {READY_TIMEOUT:.0f}s:\n"
                            f"{gateway.error_log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield gateway
    finally:
        gateway.client.close()
        _stop(process)


@pytest.fixture(scope="module")
def tokens(stack):
    return {"user": stack.login(), "admin": stack.login(stack.admin, stack.admin_password)}


def test_protected_without_token_is_the_json_401(stack, dropin):
    before = len(stack.backend_hits())
    response = dropin.get("/api/protected/")
    assert response.status_code == 401, dropin.explain(response)
    assert response.json() == {"error": "missing_token", "message": "Missing Authorization header"}
    assert response.headers["content-type"] == "application/json"
    # The validator is the stack's: its VALIDATOR_PUBLIC_ORIGINS (RFC 9728 metadata) is the stack's origin.
    assert response.headers.get_list("www-authenticate") == [
        f'Bearer realm="jwtgate", resource_metadata="{stack.url}/.well-known/oauth-protected-resource"']
    bad = dropin.get("/api/protected/", "not.a.token")
    assert bad.status_code == 401, dropin.explain(bad)
    assert bad.json()["error"] == "malformed"
    assert len(stack.backend_hits()) == before


def test_valid_token_reaches_the_backend_with_the_identity_not_the_spoofed_one(stack, dropin, tokens):
    response = dropin.get("/api/protected/orders", tokens["user"], **SPOOFED)
    assert response.status_code == 200, dropin.explain(response)
    body = response.json()
    assert (body["userId"], body["roles"], body["scopes"]) == (stack.username, ["user"], ["orders:read"])
    assert (body["email"], body["tenant"]) == (None, None)
    assert body["path"] == "/api/protected/orders"
    assert stack.backend_hits()[-1] == ("GET", "/api/protected/orders", stack.username)


def test_public_route_drops_spoofed_identity_headers(stack, dropin):
    response = dropin.get("/api/public/", **SPOOFED)
    assert response.status_code == 200, dropin.explain(response)
    assert response.json() == {"message": "Public route: No auth needed"}
    # The backend logs the X-User-Id it received: none.
    assert stack.backend_hits()[-1] == ("GET", "/api/public/", None)


def test_role_requirement_is_403_for_the_demo_user_and_200_for_the_admin(stack, dropin, tokens):
    before = len(stack.backend_hits())
    response = dropin.get("/api/admin/reports", tokens["user"])
    assert response.status_code == 403, dropin.explain(response)
    assert response.json() == {"error": "insufficient_scope", "message": "Insufficient scope or role"}
    assert response.headers.get_list("www-authenticate") == [
        'Bearer realm="jwtgate", error="insufficient_scope", error_description="Insufficient scope or role", '
        f'resource_metadata="{stack.url}/.well-known/oauth-protected-resource"']
    assert len(stack.backend_hits()) == before
    allowed = dropin.get("/api/admin/reports", tokens["admin"])
    assert allowed.status_code == 200, dropin.explain(allowed)
    assert allowed.json()["userId"] == stack.admin


def test_verify_location_is_internal(dropin):
    assert dropin.get("/_jwtgate/verify").status_code == 404


def test_access_log_names_the_user_and_never_the_token(stack, dropin, tokens):
    assert dropin.get("/api/protected/log-check", tokens["user"]).status_code == 200
    records = [json.loads(line) for line in dropin.access_log.read_text().splitlines()]
    assert {"path": "/api/protected/log-check", "status": 200, "user": stack.username}.items() <= records[-1].items()
    text = dropin.access_log.read_text()
    assert all(token not in text for token in tokens.values())


def test_validator_down_is_the_json_503(stack, dropin, tokens):
    # Last in this module: it stops the module's own validator.
    before = len(stack.backend_hits())
    stack.stack.stop_process("validator")
    response = dropin.get("/api/protected/", tokens["user"])
    assert response.status_code == 503, dropin.explain(response)
    assert response.json() == {"error": "auth_unavailable", "message": "Authentication service unavailable"}
    assert response.headers["retry-after"] == "5"
    assert len(stack.backend_hits()) == before
