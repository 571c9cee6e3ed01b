"""The whole gateway on one machine: Nginx and three gunicorn apps as child processes.

`make run`, `make e2e` and the integration tests all start the stack through
this module, so what the tests prove is what a user runs.
"""

import ctypes
import grp
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jwtgate.loopback import http_get
from jwtgate.settings import ConfigError, EnvReader
from launcher.files import nginx_dir
from launcher.oidc_demo import OidcDemo

NGINX_DIR = nginx_dir()
_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}|\$([A-Z][A-Z0-9_]*)")
_SERVICES = ("auth_api", "backend", "validator")
# Scaling out: JWTGATE_<key> separate gunicorn masters of a service, each on its own socket.
_REPLICA_SETTINGS = {"validator": "VALIDATOR_REPLICAS", "auth_api": "AUTH_REPLICAS"}
_BIND_SETTINGS = {"validator": "VALIDATOR_BIND", "auth_api": "AUTH_BIND", "backend": "BACKEND_BIND"}
# Directories next to nginx.conf whose *.conf files the templates and snippets include, if any:
# gateway.conf.template's upstreams a further replica each, jwtgate-server.conf's verify location the micro-cache.
UPSTREAMS_DIR = "jwtgate-upstreams.d"
VERIFY_DIR = "jwtgate-verify.d"
MICRO_CACHE_ZONE = "conf.d/micro-cache.conf"
# The old name of JWTGATE_MICRO_CACHE, still read for one release.
_OLD_MICRO_CACHE = "JWTGATE_VERDICT_CACHE"
# JWTGATE_NGINX_SCHED_POLICY: the Linux scheduling policy Nginx runs under (chrt's names).
_SCHED_POLICIES = {"batch": os.SCHED_BATCH, "other": os.SCHED_OTHER}
# Started as root, Nginx's workers run as the first of these accounts that exists.
_WORKER_ACCOUNTS = ("www-data", "nobody")
# Where, as root, the files Nginx's workers open live: root alone creates entries under /run.
_WORKER_DIRS = Path("/run/jwtgate")


def render(template, variables):
    """envsubst restricted to `variables`, as the nginx image does: other `$names` stay as they are."""

    def substitute(match):
        name = match.group(1) or match.group(2)
        return variables[name] if name in variables else match.group(0)

    return _VARIABLE.sub(substitute, template)


def worker_account():
    """(user, group, gid) for Nginx's workers when the launcher is root: www-data, else nobody."""
    for name in _WORKER_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name, entry.pw_gid
    raise StackError(f"started as root, but no account for Nginx's workers exists: {' or '.join(_WORKER_ACCOUNTS)}")


def _die_with_parent():
    # Children in their own session miss the terminal's Ctrl-C (we stop them in
    # order); PR_SET_PDEATHSIG still stops them if this runner is killed.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


def _with_policy(policy):
    """_die_with_parent, then the scheduling policy named `policy` (its workers inherit it).

    Best effort: a sandbox that refuses sched_setscheduler(2) must not stop the gateway from
    starting; start_process() sees the policy the child got and says so.
    """

    def start():
        _die_with_parent()
        try:
            os.sched_setscheduler(0, _SCHED_POLICIES[policy], os.sched_param(0))
        except OSError:
            pass

    return start


class StackError(Exception):
    """The stack could not start; the message says which part and quotes its log."""


class StackConfigError(StackError):
    """The stack's settings are invalid; the message names every bad setting."""


@dataclass
class Stack:
    """Starts, checks and stops the local gateway inside one data directory."""

    data_dir: Path
    listen: str = "127.0.0.1:8080"
    environ: dict = field(default_factory=lambda: dict(os.environ))
    nginx: str = field(default_factory=lambda: shutil.which("nginx") or "/usr/sbin/nginx")
    ready_timeout: float = 30.0
    processes: dict = field(default_factory=dict)
    # `make demo`: an OidcDemo (launcher/oidc_demo.py) started first and trusted beside our auth API.
    oidc_demo: OidcDemo | None = None

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()
        self.log_dir = self.data_dir / "logs"
        self.nginx_prefix = self.data_dir / "nginx"
        # As root, Nginx's workers run unprivileged (never as root), and the data directory's parents may
        # be closed to them (/root, pytest's base directory): what they open, the services' sockets, their
        # temporary and cache files and the login page, lives in a directory of its own that only root and
        # their group may enter.
        self.workers = worker_account() if os.geteuid() == 0 else None
        if self.workers:
            self.worker_dir = _WORKER_DIRS / hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            self.run_dir = self.worker_dir / "run"
        else:
            self.worker_dir = self.nginx_prefix
            self.run_dir = self.data_dir / "run"

    @property
    def url(self):
        return f"http://{self.listen}"

    @property
    def issuer(self):
        """The `iss` of the auth API's tokens: AUTH_ISSUER, by default the gateway's URL."""
        return self.service_env()["AUTH_ISSUER"]

    def socket(self, service):
        return str(self.run_dir / f"{service}.sock")

    def replicas(self, service):
        """The process names of a service: itself, then `<service>-2` ... (JWTGATE_VALIDATOR_REPLICAS etc.)."""
        if service not in _REPLICA_SETTINGS:
            return [service]
        count = EnvReader(self.environ, "JWTGATE_").integer(_REPLICA_SETTINGS[service], 1, minimum=1, maximum=16)
        return [service] + [f"{service}-{index}" for index in range(2, (count or 1) + 1)]

    def replica_env(self, name):
        """service_env() for one process, bound to its socket; a further replica gets its own metrics directory."""
        env = self.service_env()
        service = name.split("-")[0]
        env[_BIND_SETTINGS[service]] = f"unix:{self.socket(name)}"
        if name != service:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.data_dir / "metrics" / name)
        return env

    @property
    def micro_cache(self):
        """JWTGATE_MICRO_CACHE=1: the optional Nginx micro-cache of allowed verdicts is on."""
        key = "VERDICT_CACHE" if "JWTGATE_MICRO_CACHE" not in self.environ and _OLD_MICRO_CACHE in self.environ \
            else "MICRO_CACHE"
        return EnvReader(self.environ, "JWTGATE_").flag(key)

    @property
    def nginx_sched_policy(self):
        """JWTGATE_NGINX_SCHED_POLICY: `batch` (the default) or `other`, as in chrt(1).

        Nginx and the validator share the cores. Under SCHED_OTHER, Nginx, woken by each answer,
        preempts the validator worker that wrote it; under SCHED_BATCH it waits until the worker
        blocks or its slice ends, and then reads every answer that is waiting: fewer context switches
        for each check that misses the verdict cache (figures: docs/performance.md).
        """
        return EnvReader(self.environ, "JWTGATE_").text("NGINX_SCHED_POLICY", "batch", choices=_SCHED_POLICIES)

    def service_env(self):
        env = dict(self.environ)
        if self.micro_cache:
            # The micro-cache stores only what the validator marks with max-age.
            env.setdefault("VALIDATOR_VERDICT_MAX_AGE_SECONDS", "5")
        env["JWTGATE_DATA_DIR"] = str(self.data_dir)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Plain http here: browsers keep a `Secure` cookie from http://127.0.0.1 or localhost only, so a
        # JWTGATE_LISTEN on any other address would lose the login cookies.
        env.setdefault("AUTH_COOKIE_SECURE", "0")
        # The auth API writes its revocations here; the validator polls them (validator/revocation.py).
        env.setdefault("VALIDATOR_REVOCATION_DB", str(self.data_dir / "revocations.db"))
        # RFC 9449 section 4.3: DPoP proofs name the origin clients reach the gateway at.
        env.setdefault("VALIDATOR_PUBLIC_ORIGINS", self.url)
        env.setdefault("AUTH_PUBLIC_ORIGINS", self.url)
        # The auth API's issuer is the gateway's URL, which publishes its RFC 8414 metadata there
        # (auth_api/metadata.py): a verifier that knows only the issuer finds its keys.
        env.setdefault("AUTH_ISSUER", self.url)
        if self.oidc_demo is not None:
            env["VALIDATOR_PROVIDERS_FILE"] = str(self.oidc_demo.providers_path)
        if "VALIDATOR_PROVIDERS_FILE" in env:
            return env
        # Our auth API as the one provider, named so a location can accept its tokens alone
        # (/api/staff/), its tokens in RFC 9068 shape with a jti in each (validator/providers.py PRESETS).
        env.setdefault("VALIDATOR_PROVIDER_NAME", "jwtgate")
        env.setdefault("VALIDATOR_PROVIDER_PRESET", "jwtgate")
        env.setdefault("VALIDATOR_ISSUER", env["AUTH_ISSUER"])
        if "VALIDATOR_HS256_SECRET" not in env and "VALIDATOR_HS256_SECRET_FILE" not in env:
            # Found like any other provider's: RFC 8414 metadata on the issuer, then the jwks_uri it names.
            # Both fetches go over the auth API's socket, which the gateway's public URL leads to anyway.
            env.setdefault("VALIDATOR_DISCOVERY", "oauth")
            env.setdefault("VALIDATOR_JWKS_SOCKET", self.socket("auth_api"))
        return env

    def log_path(self, name):
        return self.log_dir / f"{name}.log"

    def log_tail(self, name, lines=40):
        path = self.log_path(name)
        if not path.exists():
            return f"(no {name} log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def prepare(self):
        """Create directories, initialise the auth data, render and test the Nginx config."""
        if self.oidc_demo is not None and not self.oidc_demo.problems():
            # Before the settings check, which reads the providers file.
            self.oidc_demo.prepare(self.socket("auth_api"), self.service_env()["AUTH_ISSUER"])
        self.check_settings()
        if self.workers:
            self._open_to_workers()
        for directory in (self.data_dir, self.run_dir, self.log_dir, self.nginx_prefix / "conf.d",
                          self.worker_dir / "tmp", self.nginx_prefix / UPSTREAMS_DIR, self.nginx_prefix / VERIFY_DIR):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.micro_cache:
            (self.worker_dir / "micro-cache").mkdir(exist_ok=True, mode=0o700)
        # Nginx would create its logs 0644; it appends to these instead.
        for name in ("nginx-access", "nginx-error"):
            self._open_log(name).close()
        self._run_checked([sys.executable, "-m", "auth_api", "init"], "auth_api init")
        variables = self.nginx_variables()
        configs = {"nginx.conf": NGINX_DIR / "local" / "nginx.conf.template",
                   "conf.d/gateway.conf": NGINX_DIR / "templates" / "gateway.conf.template"}
        for name, template in configs.items():
            (self.nginx_prefix / name).write_text(render(template.read_text(), variables))
        # Include files of an earlier run with other settings go first.
        prefix = self.nginx_prefix
        for stale in (*(prefix / UPSTREAMS_DIR).glob("*.conf"), *(prefix / VERIFY_DIR).glob("*.conf"),
                      prefix / MICRO_CACHE_ZONE):
            stale.unlink(missing_ok=True)
        for name, text in self.includes(variables).items():
            (self.nginx_prefix / name).write_text(text)
        self._run_checked(self._nginx_command("-t", "-q"), "nginx -t")

    def includes(self, variables):
        """{file under the Nginx prefix: text}: the optional include files these settings ask for (none by default)."""
        files = {}
        upstream = (NGINX_DIR / "local" / "upstream-server.conf.template").read_text()
        for service in _REPLICA_SETTINGS:
            for name in self.replicas(service)[1:]:
                address = {"NGINX_UPSTREAM_ADDR": f"unix:{self.socket(name)}"}
                files[f"{UPSTREAMS_DIR}/{name}.conf"] = render(upstream, address)
        if self.micro_cache:
            files[MICRO_CACHE_ZONE] = render((NGINX_DIR / "local" / "micro-cache.conf.template").read_text(), variables)
            files[f"{VERIFY_DIR}/micro-cache.conf"] = render(
                (NGINX_DIR / "local" / "micro-cache-verify.conf.template").read_text(), variables)
        return files

    def _open_to_workers(self):
        """Make the worker directory, which Nginx's workers' group may enter (not list), with the login page.

        Nginx itself hands its temporary and cache directories to the workers' user (mode 0700).
        """
        _WORKER_DIRS.mkdir(parents=True, exist_ok=True, mode=0o711)
        gid = self.workers[2]
        for directory in (self.worker_dir, self.run_dir, self.worker_dir / "tmp"):
            directory.mkdir(exist_ok=True, mode=0o710)
            os.chown(directory, 0, gid)
            directory.chmod(0o710)
        shutil.copytree(NGINX_DIR / "html", self.worker_dir / "html", dirs_exist_ok=True)

    def check_settings(self):
        """Read every service's settings now, so one message names every bad setting of the stack."""
        from auth_api.config import Settings as AuthSettings
        from validator.config import Settings as ValidatorSettings

        stack_env = EnvReader(self.environ, "JWTGATE_")
        stack_env.flag("MICRO_CACHE")
        if _OLD_MICRO_CACHE in self.environ:
            stack_env.flag("VERDICT_CACHE")
            sys.stderr.write(f"jwtgate: {_OLD_MICRO_CACHE} is now JWTGATE_MICRO_CACHE; the old name is read for one"
                             " more release (the new one wins when both are set)\n")
        stack_env.text("NGINX_SCHED_POLICY", "batch", choices=_SCHED_POLICIES)
        for key in _REPLICA_SETTINGS.values():
            stack_env.integer(key, 1, minimum=1, maximum=16)
        problems = list(stack_env.problems)
        if self.oidc_demo is not None:
            problems.extend(self.oidc_demo.problems())
            if "VALIDATOR_PROVIDERS_FILE" in self.environ:
                problems.append(("VALIDATOR_PROVIDERS_FILE", "unset it for the demo, which writes its own"))
            if problems:
                raise StackConfigError(str(ConfigError(problems)))
        for settings_class in (ValidatorSettings, AuthSettings):
            try:
                settings_class.from_env(self.service_env())
            except ConfigError as error:
                problems.extend(error.problems)
        if problems:
            raise StackConfigError(str(ConfigError(problems)))

    def nginx_variables(self):
        """The NGINX_* values the templates are rendered with."""
        return {
            "NGINX_LISTEN": self.listen,
            "NGINX_SNIPPETS_DIR": str(NGINX_DIR / "snippets"),
            # The login page (nginx/html/login/), static files Nginx serves itself.
            "NGINX_HTML_DIR": str(self.worker_dir / "html" if self.workers else NGINX_DIR / "html"),
            # Nginx's temporary files and the micro-cache.
            "NGINX_WORKER_DIR": str(self.worker_dir),
            "NGINX_VALIDATOR_ADDR": f"unix:{self.socket('validator')}",
            "NGINX_AUTH_API_ADDR": f"unix:{self.socket('auth_api')}",
            "NGINX_BACKEND_ADDR": f"unix:{self.socket('backend')}",
            "NGINX_ACCESS_LOG": str(self.log_path("nginx-access")),
            "NGINX_ERROR_LOG": str(self.log_path("nginx-error")),
            "NGINX_PREFIX": str(self.nginx_prefix),
            "NGINX_WORKER_PROCESSES": self.environ.get("NGINX_WORKER_PROCESSES", "1"),
            "NGINX_CORS_ORIGIN_REGEX": self.environ.get("NGINX_CORS_ORIGIN_REGEX", "^$"),
            # Prometheus' listener: internal only. A unix socket unless an address is asked for,
            # so several stacks (the tests start a few) never fight over a port.
            "NGINX_METRICS_LISTEN": self.environ.get("JWTGATE_METRICS_LISTEN")
            or f"unix:{self.run_dir / 'metrics.sock'}",
            "NGINX_USER_DIRECTIVE": f"user {self.workers[0]} {self.workers[1]};" if self.workers else "",
        }

    def demo_credentials(self):
        """Give the demo users fresh passwords; return [(username, password), ...], the plain user first."""
        output = self._run_checked([sys.executable, "-m", "auth_api", "users", "demo"], "auth_api users demo")
        lines = [line.split(": ", 1)[1] for line in output.splitlines()
                 if line.startswith(("username: ", "password: "))]
        return list(zip(lines[::2], lines[1::2]))

    def start(self):
        """Start every process and wait until each answers; raise StackError with its log otherwise."""
        try:
            self.prepare()
            if self.oidc_demo is not None:
                # First, so the validator finds its discovery document at start.
                self.start_process("oidc-demo")
            for name in (*(name for service in _SERVICES for name in self.replicas(service)), "nginx"):
                self.start_process(name)
        except BaseException:
            self.stop()
            raise
        return self

    def start_process(self, name):
        """Start one part (a service or replica name, "oidc-demo" or "nginx") and wait until it answers."""
        if name == "oidc-demo":
            self._spawn(name, self.oidc_demo.command(), self.oidc_demo.environ(self.environ))
            self._wait(name, lambda: http_get(self.oidc_demo.discovery_url, timeout=1.0))
        elif name == "nginx":
            policy = self.nginx_sched_policy
            self._spawn(name, self._nginx_command(), start=_with_policy(policy))
            if os.sched_getscheduler(self.processes[name].pid) != _SCHED_POLICIES[policy]:
                sys.stderr.write(f"jwtgate: JWTGATE_NGINX_SCHED_POLICY={policy}: this system refused the"
                                 " scheduling policy; Nginx runs under the one it inherited\n")
            self._wait(name, lambda: http_get(f"{self.url}/healthz", timeout=1.0))
        else:
            service = name.split("-")[0]
            self._spawn(name, self.gunicorn_command(service), self.replica_env(name))
            # A validator counts once it could allow a request: a key and a fresh revocation set.
            path = "/readyz" if service == "validator" else "/healthz"
            self._wait(name, lambda: http_get(f"http://localhost{path}", unix_socket=self.socket(name), timeout=1.0))

    def stop_process(self, name, sig=signal.SIGTERM):
        """Signal one part's whole process group (master and workers) and wait for it to exit."""
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=15)

    def stop(self):
        """Stop Nginx first (no new requests), then the apps; SIGKILL whatever lingers."""
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.workers:
            shutil.rmtree(self.worker_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _nginx_command(self, *extra):
        return [self.nginx, "-p", str(self.nginx_prefix), "-c", str(self.nginx_prefix / "nginx.conf"),
                "-e", str(self.log_path("nginx-error")), *extra]

    @staticmethod
    def gunicorn_config(service):
        """The service's gunicorn.conf.py, in its installed package."""
        return Path(importlib.util.find_spec(service).origin).parent / "gunicorn.conf.py"

    def gunicorn_command(self, service):
        return [sys.executable, "-m", "gunicorn", "-c", str(self.gunicorn_config(service))]

    def _run_checked(self, command, what):
        result = subprocess.run(command, env=self.service_env(), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise StackError(f"{what} failed:\n{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _open_log(self, name):
        """The log file of `name` for appending, 0600 (an older run's too): logs name users and paths."""
        fd = os.open(self.log_path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return open(fd, "ab")

    def _spawn(self, name, command, env=None, start=_die_with_parent):
        with self._open_log(name) as log:
            self.processes[name] = subprocess.Popen(
                command, env=self.service_env() if env is None else env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log,
                start_new_session=True, preexec_fn=start,
            )

    def _wait(self, name, probe):
        deadline = time.monotonic() + self.ready_timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"{name} exited with status {process.returncode}:\n{self.log_tail(name)}")
            try:
                status, _ = probe()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise StackError(f"{name} not ready after {self.ready_timeout:.0f}s:\n{self.log_tail(name)}")
