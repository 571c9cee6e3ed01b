"""The zero-cost auth server of the external-floor scenario: a second Nginx answering 200 and X-User-Id.

It also serves the second identity provider's JWKS (bench/tokens.py SecondProvider) to the validator.
"""

import ctypes
import signal
import subprocess
import time
from pathlib import Path

from jwtgate.loopback import http_get
from launcher.stack import render

TEMPLATE = Path(__file__).resolve().parent / "external.conf.template"


def _die_with_parent():
    # PR_SET_PDEATHSIG, as the stack does for its own children: a killed bench leaves no Nginx behind.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class ZeroCostServer:
    """Nginx in its own prefix on a unix socket: the floor for any validator outside the gateway's Nginx."""

    def __init__(self, prefix, nginx, ready_timeout=15.0):
        self.prefix = prefix
        self.socket = prefix / "verify.sock"
        # Served at /provider-b/jwks.json: the second provider's key set, written before start().
        self.jwks = prefix / "provider-b-jwks.json"
        self.log = prefix / "error.log"
        self.nginx = nginx
        self.ready_timeout = ready_timeout
        self.process = None

    def start(self, user_directive=""):
        """Render the config, start Nginx and wait until it answers; SystemExit with its log otherwise."""
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(render(TEMPLATE.read_text(), {
            "BENCH_EXTERNAL_PREFIX": str(self.prefix),
            "BENCH_EXTERNAL_SOCKET": str(self.socket),
            "BENCH_EXTERNAL_JWKS": str(self.jwks),
            "NGINX_USER_DIRECTIVE": user_directive,
        }))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.nginx, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the zero-cost auth server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                status, _ = http_get("http://localhost/verify", unix_socket=str(self.socket), timeout=1.0)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"the zero-cost auth server not ready after {self.ready_timeout:.0f}s:\n{self.log_tail()}")

    def stop(self):
        """SIGQUIT (Nginx's graceful stop), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines=20):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
