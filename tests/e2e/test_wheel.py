"""The wheel as a user installs it: a fresh virtual environment, outside the source tree, the `jwtgate` command."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_run_command import start_run, stop_run
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# Building (sdist, then the wheel from it) and installing the dependencies take most of this.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(jwtgate command, environment, working directory): the wheel `python -m build` makes, in a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (base / "dist").glob("jwtgate-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    # No extras: the Redis and PostgreSQL clients stay out, as for most users.
    pip = subprocess.run([str(base / "venv" / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                          "-c", str(ROOT / "constraints.txt"), str(wheel)], capture_output=True, text=True, timeout=240)
    assert pip.returncode == 0, pip.stderr[-2000:]
    # Nothing of the source tree: not its directory, not PYTHONPATH, not the test venv.
    environ = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not key.startswith(("VALIDATOR_", "AUTH_",
                                                                                              "JWTGATE_"))}
    environ["PATH"] = f"{base / 'venv' / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
    work = base / "work"
    work.mkdir()
    return [str(base / "venv" / "bin" / "jwtgate")], environ, work


def jwtgate(installed, *args, **environ):
    command, base_environ, work = installed
    return subprocess.run([*command, *args], env={**base_environ, "JWTGATE_DATA_DIR": str(work / "data"), **environ},
                          cwd=work, capture_output=True, text=True, timeout=60)


def test_jwtgate_help_lists_every_command_and_bad_usage_exits_2(installed):
    result = jwtgate(installed, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "validator", "auth-api", "nginx", "check", "admin"):
        assert command in result.stdout
    for command in ("run", "validator", "auth-api", "nginx", "check", "admin"):
        assert jwtgate(installed, command, "--help").returncode == 0, command
    assert jwtgate(installed, "no-such-command").returncode == 2
    assert jwtgate(installed, "nginx").returncode == 2


def test_jwtgate_check_passes_a_valid_configuration_and_names_each_bad_setting(installed):
    assert jwtgate(installed, "check").returncode == 0
    bad = jwtgate(installed, "check", VALIDATOR_LEEWAY_SECONDS="soon", AUTH_ACCESS_TOKEN_TTL_SECONDS="-5")
    assert bad.returncode == 2
    assert "VALIDATOR_LEEWAY_SECONDS" in bad.stderr and "AUTH_ACCESS_TOKEN_TTL_SECONDS" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert jwtgate(installed, "check", "validator").returncode == 2


def test_a_redis_setting_without_the_redis_extra_stops_start_up_naming_the_extra(installed):
    result = jwtgate(installed, "check", VALIDATOR_REVOCATION_DB="redis://127.0.0.1:6379/0")
    assert result.returncode == 2
    assert "VALIDATOR_REVOCATION_DB" in result.stderr and "jwtgate[redis]" in result.stderr
    assert "Traceback" not in result.stderr


def test_jwtgate_nginx_installs_the_include_files_from_the_installed_package(installed, tmp_path):
    printed = jwtgate(installed, "nginx", "--print-dir")
    assert printed.returncode == 0
    source = Path(printed.stdout.strip())
    assert ROOT not in source.parents and "site-packages" in source.parts
    result = jwtgate(installed, "nginx", "--install", str(tmp_path / "jwtgate"))
    assert result.returncode == 0, result.stderr
    for name in ("snippets/jwtgate-server.conf", "snippets/jwtgate-protect.conf", "snippets/jwtgate-http.conf",
                 "templates/gateway.conf.template", "html/login/index.html"):
        assert (tmp_path / "jwtgate" / name).read_text() == (ROOT / "nginx" / name).read_text()


def test_the_installed_jwtgate_run_allows_a_token_and_refuses_none(installed):
    command, environ, work = installed
    port = free_port()
    process, credentials = start_run(work / "run-data", port, command=command, environ=environ, cwd=work)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        assert client.get("/api/protected/").status_code == 401
        login = client.post("/api/auth/login", json=credentials)
        assert login.status_code == 200
        protected = client.get("/api/protected/", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert protected.status_code == 200
        assert protected.json()["userId"] == credentials["username"]
        # Nginx includes the installed package's files, never the source tree's.
        gateway = (work / "run-data" / "nginx" / "conf.d" / "gateway.conf").read_text()
        assert str(ROOT / "nginx") not in gateway and "site-packages" in gateway
    finally:
        stop_run(process)


def test_the_installed_jwtgate_auth_api_serves_and_admin_manages_its_users(installed):
    command, environ, work = installed
    port = free_port()
    environ = {**environ, "JWTGATE_DATA_DIR": str(work / "auth-data"), "AUTH_BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen([*command, "auth-api"], env=environ, cwd=work,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the auth API never answered /healthz"
            time.sleep(0.2)
        added = subprocess.run([*command, "admin", "users", "add", "alice", "--role", "user"], env=environ, cwd=work,
                               capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        listed = subprocess.run([*command, "admin", "users", "list"], env=environ, cwd=work,
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and "alice" in listed.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
