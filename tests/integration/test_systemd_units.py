"""examples/systemd/: systemd-analyze verify on each unit, and the units' own command lines run for real.

systemd is not PID 1 here, so the commands run as plain children: the unit's argv and environment (its
Environment= lines, then the example env file), with /opt/jwtgate, /run and /var/lib moved into a
temporary directory and the example's Redis URL pointed at a test Redis. Writable and executable memory
is refused as MemoryDenyWriteExecute=yes would, with the kernel's own switch (prctl PR_SET_MDWE).
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.test_tls_example import self_signed
from tests.services import _tail, _wait
from tests.systemd_support import ROOT, UNITS, directives, service_environment

pytestmark = pytest.mark.integration
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HOST_UNITS = Path("/usr/lib/systemd/system")
# linux/prctl.h: PR_SET_MDWE and PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3).
_PR_SET_MDWE, _PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_OWN_SETTINGS = ("JWTGATE_", "VALIDATOR_", "AUTH_", "PROMETHEUS_MULTIPROC_DIR")


def refuse_writable_executable_memory():
    """In the child before exec: no mapping may be both writable and executable, now or after exec."""
    if _LIBC.prctl(_PR_SET_MDWE, _PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def kernel_refuses_writable_executable_memory():
    probe = subprocess.run([sys.executable, "-c", "import mmap; mmap.mmap(-1, 4096, prot=7)"],
                           preexec_fn=refuse_writable_executable_memory, capture_output=True, timeout=30)
    return probe.returncode != 0 and b"Permission denied" in probe.stderr


def shipped_commands():
    """Every command the shipped units run (ExecStart=, ExecStartPre=, ExecReload=...)."""
    return {values[0].split()[0] for unit in UNITS.values()
            for key, values in directives(unit)["Service"].items() if key.startswith("Exec")}


def systemd_root(tmp_path, unit_texts):
    """A root for `systemd-analyze verify --root`: the host's own units (sysinit.target and the like), the
    shipped units' commands as stubs (verify checks each is executable), the units under test in /etc."""
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for command in shipped_commands():
        stub = root / command.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for name, unit_text in unit_texts.items():
        (units / name).write_text(unit_text)
    return root


def verify(tmp_path, name, unit_text):
    root = systemd_root(tmp_path, {name: unit_text})
    return subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={root}", "--man=no",
                           str(root / "etc/systemd/system" / name)],
                          capture_output=True, text=True, timeout=60)


needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None or not HOST_UNITS.is_dir(),
                                           reason="systemd-analyze is not installed (Debian's systemd package)")


@needs_systemd_analyze
@pytest.mark.parametrize("service", sorted(UNITS))
def test_systemd_analyze_verify_passes_each_unit_without_a_word(service, tmp_path):
    result = verify(tmp_path, UNITS[service].name, UNITS[service].read_text())
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_systemd_analyze
def test_the_check_catches_a_misspelt_option_and_a_missing_command(tmp_path):
    text = UNITS["validator"].read_text()
    misspelt = verify(tmp_path / "misspelt", "jwtgate-validator.service",
                      text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    assert "Unknown key 'ProtectSytem'" in misspelt.stderr
    missing = verify(tmp_path / "missing", "jwtgate-validator.service",
                     text.replace("ExecReload=", "ExecStartPost=/opt/jwtgate/bin/absent\nExecReload="))
    assert missing.returncode != 0 and "/opt/jwtgate/bin/absent" in missing.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("service", sorted(UNITS))
def test_systemd_analyze_security_rates_each_units_exposure_at_most_2(service, tmp_path):
    root = systemd_root(tmp_path, {UNITS[service].name: UNITS[service].read_text()})
    # --threshold=20: fail above an exposure of 2.0 (systemd calls 1.0 to 4.9 "OK", 5.0 up "MEDIUM" and worse).
    result = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", f"--root={root}",
                             str(root / "etc/systemd/system" / UNITS[service].name)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-600:]


class UnitCommand:
    """A unit's Exec lines and environment, run as systemd would, with its paths moved under tmp_path."""

    def __init__(self, service, tmp_path, redis_url, mdwe):
        self.service, self.mdwe = service, mdwe
        self.options = directives(UNITS[service])["Service"]
        self.moves = {"/opt/jwtgate/bin/": f"{Path(sys.executable).parent}/",
                      # The install links /opt/jwtgate/app/<service>/gunicorn.conf.py to the package's own file.
                      "/opt/jwtgate/app/": f"{ROOT}/",
                      "/run/": f"{tmp_path}/run/", "/var/lib/": f"{tmp_path}/var/lib/",
                      "redis://127.0.0.1:6379/0": redis_url}
        unit_environ = {name: self.move(value) for name, value in service_environment(UNITS[service]).items()}
        inherited = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_SETTINGS)}
        self.environ = {**inherited, **unit_environ}
        # What systemd creates before the first command: RuntimeDirectory= and StateDirectory=.
        for key, parent in (("RuntimeDirectory", "run"), ("StateDirectory", "var/lib")):
            mode = int(self.options[f"{key}Mode"][0], 8)
            (tmp_path / parent / self.options[key][0]).mkdir(mode=mode, parents=True)
        self.log_path = tmp_path / f"{service}.log"
        self.process = None

    def move(self, text):
        """One pass, so a moved path is never moved again."""
        return re.sub("|".join(map(re.escape, self.moves)), lambda match: self.moves[match.group()], text)

    def argv(self, key):
        (line,) = self.options[key]
        return self.move(line).split()

    def _popen(self, argv, **kwargs):
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(argv, cwd=ROOT, env=self.environ, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, preexec_fn=refuse_writable_executable_memory if self.mdwe else None,
                                    **kwargs)

    def run(self, key):
        process = self._popen(self.argv(key))
        assert process.wait(timeout=60) == 0, _tail(self.log_path)

    def start(self):
        self.process = self._popen(self.argv("ExecStart"), start_new_session=True)
        return self

    def socket(self):
        return self.environ[f"{'VALIDATOR' if self.service == 'validator' else 'AUTH'}_BIND"].removeprefix("unix:")

    def client(self):
        return httpx.Client(base_url="http://localhost", transport=httpx.HTTPTransport(uds=self.socket()), timeout=10)

    def stop(self):
        """SIGTERM to gunicorn's master, as systemd's stop does; it must exit within TimeoutStopSec=."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                assert self.process.wait(timeout=int(self.options["TimeoutStopSec"][0])) == 0
            finally:
                if self.process.poll() is None:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()


@pytest.fixture
def unit_commands(tmp_path, redis_server):
    started = []

    def start(service, mdwe):
        command = UnitCommand(service, tmp_path, redis_server.url, mdwe)
        started.append(command)
        return command

    yield start
    for command in reversed(started):
        command.stop()


def run_both_units(unit_commands, mdwe):
    auth_api = unit_commands("auth_api", mdwe)
    auth_api.run("ExecStartPre")
    auth_api.start()
    validator = unit_commands("validator", mdwe).start()
    with auth_api.client() as auth_client, validator.client() as validator_client:
        _wait("the validator unit's command", validator.process,
              lambda: validator_client.get("/healthz").status_code == 200, validator.log_path)
        # Ready only once it has the auth API's keys (through its socket) and the revocation feed (Redis).
        _wait("the validator's keys and revocations", validator.process,
              lambda: validator_client.get("/readyz").status_code == 200, validator.log_path)
        password = "correct horse battery staple 7"
        add = subprocess.run([auth_api.argv("ExecStartPre")[0], "-m", "auth_api", "users", "add", "alice",
                              "--role", "user", "--password-stdin"], input=password, cwd=ROOT, env=auth_api.environ,
                             capture_output=True, text=True, timeout=60)
        assert add.returncode == 0, add.stderr
        login = auth_client.post("/api/auth/login", json={"username": "alice", "password": password})
        assert login.status_code == 200, _tail(auth_api.log_path)
        token = login.json()["access_token"]
        allowed = validator_client.get("/verify", headers={"Authorization": f"Bearer {token}"})
        assert (allowed.status_code, allowed.headers.get("X-User-Id")) == (200, "alice"), _tail(validator.log_path)
        assert validator_client.get("/verify", headers={"Authorization": "Bearer x.y.z"}).status_code == 401
    return auth_api, validator


def test_the_units_commands_serve_on_their_sockets_and_work_together(unit_commands, tmp_path):
    auth_api, validator = run_both_units(unit_commands, mdwe=False)
    # The auth API's keys and databases in its state directory, the validator's files in its own.
    assert sorted(path.name for path in (tmp_path / "var/lib/jwtgate/keys").iterdir())
    assert (tmp_path / "var/lib/jwtgate/auth.db").exists()
    assert not (tmp_path / "var/lib/jwtgate-validator/keys").exists()
    validator.stop()
    auth_api.stop()
    assert not os.path.exists(validator.socket()) and not os.path.exists(auth_api.socket())


@pytest.mark.skipif(not kernel_refuses_writable_executable_memory(),
                    reason="this kernel has no PR_SET_MDWE (Linux 6.3)")
def test_they_run_with_writable_executable_memory_refused(unit_commands):
    # argon2-cffi (the login), uvloop and httptools (the validator's worker) and cryptography all run.
    run_both_units(unit_commands, mdwe=True)


def test_the_install_pages_nginx_configuration_passes_nginx_t(tmp_path):
    page = (ROOT / "docs" / "install-vm.md").read_text()
    (block,) = [block for block in re.findall(r"^```\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
                if "upstream jwtgate_validator" in block]
    cert, key = self_signed(tmp_path)
    (tmp_path / "logs").mkdir()
    moved = (block.replace("/etc/ssl/certs/api.example.com.pem", str(cert))
             .replace("/etc/ssl/private/api.example.com.key", str(key))
             .replace("/var/log/nginx/", f"{tmp_path}/logs/"))
    # Laid out like /etc/nginx: the snippets in jwtgate/, the page's file in conf.d/.
    shutil.copytree(ROOT / "nginx" / "snippets", tmp_path / "jwtgate")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "jwtgate.conf").write_text(moved)
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
                                         "events {}\nhttp {\n    include conf.d/jwtgate.conf;\n}\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
