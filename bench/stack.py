"""The bench stack: the shipped stack in build/bench/data, with the bench servers added to its Nginx."""

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

from bench.external import ZeroCostServer
from bench.tokens import DpopRequests, SecondProvider
from jwtgate.loopback import http_get
from launcher.stack import Stack, render

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SERVICES = ("auth_api", "backend", "validator", "nginx")
# The auth API's issuer in every bench stack (RFC 2606 .invalid: a name, never looked up).
BENCH_ISSUER = "http://bench.jwtgate.invalid"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BenchStack:
    """The shipped stack, bench/bench.conf.template's servers in its Nginx, and the zero-cost auth server."""

    def __init__(self, out, environ, upstream_keepalive=None):
        self.out = out
        self.listen = {"plain": f"127.0.0.1:{free_port()}", "cached": f"127.0.0.1:{free_port()}"}
        # DPoP proofs name the bench servers, which the validator must know as its public origins.
        origins = " ".join(f"http://{listen}" for listen in self.listen.values())
        self.providers_file = out / "providers.toml"
        # One issuer for every bench stack, whatever port it listens on: the minted token files are kept
        # between runs, and the memory phase's stack reads the main one's. The validator finds the keys
        # from it by discovery all the same, over the auth API's socket.
        self.stack = Stack(out / "data", listen=f"127.0.0.1:{free_port()}",
                           environ={**os.environ, "JWTGATE_MICRO_CACHE": "1", "VALIDATOR_PUBLIC_ORIGINS": origins,
                                    "VALIDATOR_PROVIDERS_FILE": str(self.providers_file), "AUTH_ISSUER": BENCH_ISSUER,
                                    **environ})
        # In the directory the gateway's workers may enter: started as root, they cannot reach `out`.
        self.external = ZeroCostServer(self.stack.worker_dir / "external", self.stack.nginx)
        self.provider_b = SecondProvider(out / "tokens")
        self.upstream_keepalive = upstream_keepalive
        self.dpop = None

    def start(self):
        # Beside the login page in the directory Nginx's workers may enter: started as root, they run as
        # an unprivileged user that may not reach the output directory.
        static = self.stack.worker_dir / "static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "hello.txt").write_text("hello, world\n")
        conf_d = self.stack.nginx_prefix / "conf.d"
        conf_d.mkdir(parents=True, exist_ok=True)
        (conf_d / "bench.conf").write_text(render((HERE / "bench.conf.template").read_text(), {
            "BENCH_LISTEN": self.listen["plain"],
            "BENCH_CACHED_LISTEN": self.listen["cached"],
            "BENCH_SNIPPETS_DIR": str(ROOT / "nginx" / "snippets"),
            "BENCH_STATIC_DIR": str(static),
            "BENCH_EXTERNAL_SOCKET": str(self.external.socket),
        }))
        self.external.jwks.parent.mkdir(parents=True, exist_ok=True)
        self.provider_b.write_jwks(self.external.jwks)
        self.providers_file.write_text(self.providers_toml())
        try:
            self.stack.prepare()
            if self.upstream_keepalive is not None:
                self._set_upstream_keepalive(self.upstream_keepalive)
            self.external.start(self.stack.nginx_variables()["NGINX_USER_DIRECTIVE"])
            for name in SERVICES:
                self.stack.start_process(name)
            self.dpop = DpopRequests(self.stack, self.out / "tokens")
        except BaseException:
            self.stop()
            raise
        return self

    def providers_toml(self):
        """The providers file: our auth API as `make run` configures it, and the second provider."""
        # The token's iss picks the provider (one dict lookup), ours as before: only the file names it now.
        # The second provider's key set is on the zero-cost server's socket, as ours is on the auth API's.
        providers = {
            "jwtgate": {"preset": "jwtgate", "issuer": BENCH_ISSUER, "audiences": ["jwtgate-api"], "metadata": "oauth",
                        "socket": self.stack.socket("auth_api")},
            "provider-b": {"issuer": SecondProvider.ISSUER, "audiences": [SecondProvider.AUDIENCE],
                           "jwks_uri": "http://provider-b/provider-b/jwks.json", "socket": str(self.external.socket)},
        }
        # JSON strings and arrays of strings are TOML's too.
        return "\n".join(f"[providers.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                                         for key, value in entry.items())
                         for name, entry in providers.items())

    def _set_upstream_keepalive(self, value):
        # Experiments only (--upstream-keepalive): the shipped number is in the template.
        gateway = self.stack.nginx_prefix / "conf.d" / "gateway.conf"
        text = gateway.read_text()
        text, count = re.subn(r"(upstream jwtgate_validator \{.*?keepalive )\d+;", rf"\g<1>{value};", text,
                              count=1, flags=re.S)
        if count != 1:
            raise SystemExit("cannot find the validator upstream's keepalive line in gateway.conf")
        gateway.write_text(text)

    def stop(self):
        """The gateway first (no new checks), then the zero-cost server it calls."""
        try:
            self.stack.stop()
        finally:
            self.external.stop()

    def url(self, scenario):
        return f"http://{self.listen[scenario.server]}{scenario.path}"

    def validator_workers(self):
        master = self.stack.processes["validator"].pid
        return sorted(pid for pid in _pids() if _ppid(pid) == master)

    def reload_validator(self, timeout=30.0):
        """SIGHUP gunicorn: new workers with empty verdict caches; wait until only they remain and are ready."""
        old = set(self.validator_workers())
        os.kill(self.stack.processes["validator"].pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = set(self.validator_workers())
            if workers and not workers & old and len(workers) == len(old):
                status, _ = http_get("http://localhost/readyz", unix_socket=self.stack.socket("validator"),
                                     timeout=2.0)
                if status == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"validator workers not replaced after {timeout:.0f}s:\n{self.stack.log_tail('validator')}")


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
