"""`make run`'s command, as a user runs it: start, print the demo login, serve, stop on Ctrl-C, reuse data."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from launcher.stack import Stack
from tests.services import free_port


def start_run(data_dir, port, command=(sys.executable, "-m", "launcher"), environ=os.environ, cwd=None):
    """Start `command run` (python -m launcher, or an installed jwtgate); return it and the demo user it printed."""
    process = subprocess.Popen(
        [*command, "run", "--listen", f"127.0.0.1:{port}"],
        env={**environ, "JWTGATE_DATA_DIR": str(data_dir)}, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout], daemon=True).start()
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if seen[-1].startswith("password: "):
            return process, dict(line.split(": ", 1) for line in seen if line.startswith(("username: ", "password: ")))
    process.kill()
    raise AssertionError(f"no credentials printed:\n{seen}\n{process.stderr.read()}")


def stop_run(process):
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_run_prints_credentials_serves_and_stops_cleanly(tmp_path):
    port = free_port()
    process, credentials = start_run(tmp_path, port)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        login = client.post("/api/auth/login", json=credentials)
        assert login.status_code == 200
        token = login.json()["access_token"]
        protected = client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"})
        assert protected.json()["userId"] == credentials["username"]
        kid = client.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    finally:
        stop_run(process)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    # Where the stack put its sockets (as root, a directory Nginx's workers may enter).
    run_dir = Stack(tmp_path).run_dir
    assert not list(run_dir.glob("*.sock")) or all(not _listening(path) for path in run_dir.glob("*.sock"))

    process, second = start_run(tmp_path, port)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        assert client.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid
        assert client.post("/api/auth/login", json=second).status_code == 200
        assert client.post("/api/auth/login", json=credentials).status_code == 401
        # A token from the first run is still good: same key, same data.
        assert client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        stop_run(process)


def _listening(path):
    import socket

    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def test_run_refuses_bad_configuration(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "run", "--listen", f"127.0.0.1:{free_port()}"],
        env={**os.environ, "JWTGATE_DATA_DIR": str(tmp_path), "VALIDATOR_LEEWAY_SECONDS": "soon",
             "AUTH_ACCESS_TOKEN_TTL_SECONDS": "-5"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "VALIDATOR_LEEWAY_SECONDS" in result.stderr
    assert "AUTH_ACCESS_TOKEN_TTL_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr
