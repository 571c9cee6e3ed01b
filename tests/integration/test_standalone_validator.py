"""`python -m launcher validator`: the validator alone under gunicorn, for your own Nginx and provider.

No auth API and no Nginx: the provider is a real OpenID provider (oidc-provider) found by discovery
from VALIDATOR_ISSUER, and Nginx's subrequest is played by a plain GET /verify.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from jwtgate.loopback import http_get
from tests.oidc_support import AUDIENCE
from tests.services import _tail, _wait, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Only what a user of the README's five-minute path sets, plus where this test's files go.
_OWN_SETTINGS = ("JWTGATE_", "VALIDATOR_", "AUTH_", "PROMETHEUS_MULTIPROC_DIR")


def clean_environ(tmp_path, **settings):
    environ = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_SETTINGS)}
    return {**environ, "JWTGATE_DATA_DIR": str(tmp_path / "data"), "VALIDATOR_WORKERS": "1", **settings}


class StandaloneValidator:
    """The command as a child process, its output in a log file; stopped with SIGTERM like a service manager."""

    def __init__(self, tmp_path, environ):
        self.log_path = tmp_path / "validator.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "launcher", "validator"], cwd=ROOT, env=environ,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def wait(self, timeout=30):
        return self.process.wait(timeout=timeout)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def started(tmp_path):
    running = []

    def start(**settings):
        validator = StandaloneValidator(tmp_path, clean_environ(tmp_path, **settings))
        running.append(validator)
        return validator

    yield start
    for validator in running:
        validator.stop()


def test_the_validator_alone_answers_for_an_openid_provider_found_by_discovery(started, oidc_provider, tmp_path):
    socket_path = tmp_path / "v.sock"
    validator = started(VALIDATOR_ISSUER=oidc_provider.issuer, VALIDATOR_AUDIENCE=AUDIENCE,
                        VALIDATOR_PROVIDER_PRESET="generic", VALIDATOR_BIND=f"unix:{socket_path}")
    client = httpx.Client(base_url="http://validator", transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=5)
    with client:
        _wait("the standalone validator", validator.process, lambda: client.get("/readyz").status_code == 200,
              validator.log_path)
        allowed = client.get("/verify", headers={"Authorization": f"Bearer {oidc_provider.token()}"})
        assert allowed.status_code == 200, _tail(validator.log_path)
        assert allowed.headers["X-User-Id"] == oidc_provider.client_id
        assert allowed.headers["X-User-Scopes"] == "api:read,api:write"
        refused = client.get("/verify", headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
    # Never a silent refuse-everything feed: with none configured, start-up says revocation is off.
    assert "revocation is off" in validator.log()


def test_it_listens_on_the_loopback_port_validator_bind_names(started, oidc_provider):
    port = free_port()
    validator = started(VALIDATOR_ISSUER=oidc_provider.issuer, VALIDATOR_AUDIENCE=AUDIENCE,
                        VALIDATOR_BIND=f"127.0.0.1:{port}")
    _wait("the standalone validator", validator.process,
          lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200, validator.log_path)
    allowed = httpx.get(f"http://127.0.0.1:{port}/verify", timeout=5,
                        headers={"Authorization": f"Bearer {oidc_provider.token()}"})
    assert allowed.status_code == 200 and allowed.headers["X-User-Id"] == oidc_provider.client_id


def test_without_validator_bind_it_listens_on_a_unix_socket_in_the_data_directory(started, oidc_provider, tmp_path):
    validator = started(VALIDATOR_ISSUER=oidc_provider.issuer, VALIDATOR_AUDIENCE=AUDIENCE)
    socket_path = tmp_path / "data" / "run" / "validator.sock"
    _wait("the standalone validator", validator.process,
          lambda: http_get("http://localhost/readyz", unix_socket=str(socket_path), timeout=1)[0] == 200,
          validator.log_path)


def test_bad_configuration_stops_it_naming_the_setting(started, tmp_path):
    # Plain http to a host other than loopback: refused before gunicorn starts.
    validator = started(VALIDATOR_ISSUER="http://idp.example.com", VALIDATOR_AUDIENCE=AUDIENCE,
                        VALIDATOR_BIND=f"unix:{tmp_path / 'v.sock'}")
    assert validator.wait() == 2
    assert "VALIDATOR_ISSUER" in validator.log()
    assert "Booting worker" not in validator.log() and not (tmp_path / "v.sock").exists()
