"""Real Redis and PostgreSQL servers for the scale-out tests, each started by the fixtures on a free
loopback port in a temporary directory, polled until ready, and stopped in teardown.

Debian's `redis-server` and `postgresql` packages (.ci/run installs them); system services, if any,
are never touched. PostgreSQL's initdb refuses to run as root, so as root the cluster belongs to
the `postgres` system user the Debian package creates.
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

READY_TIMEOUT = 30.0


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop_process(process, timeout=10):
    """SIGTERM, then SIGKILL if the process has not gone within `timeout` seconds (None: nothing started)."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(what, process, probe, log_path):
    """Poll probe() until it returns true; fail loudly with the server's log otherwise."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {READY_TIMEOUT:.0f}s:\n{_tail(log_path)}")


class RedisServer:
    """One redis-server process on 127.0.0.1:<free port>, without persistence."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = self.directory / "redis.log"
        self.process = None

    def start(self):
        import redis

        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.log_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            _wait("redis-server", self.process, client.ping, self.log_path)
        finally:
            client.close()
        return self

    def stop(self):
        stop_process(self.process)

    def flush(self):
        import redis

        with contextlib.closing(redis.Redis.from_url(self.url)) as client:
            client.flushall()


def _postgres_bin():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run 'apt-get install postgresql' (Debian's package)")
    return Path(candidates[-1]).parent


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, trust authentication, loopback only."""

    def __init__(self):
        # Outside pytest's root-only temporary directory: the `postgres` user must own the cluster.
        self.directory = Path(tempfile.mkdtemp(prefix="jwtgate-pg-"))
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self.bin = _postgres_bin()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def url(self, database="postgres"):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command):
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}\n{_tail(self.log_path)}")

    def start(self):
        import psycopg

        self.sockets.mkdir()
        if self.as_user:
            shutil.chown(self.directory, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "30",
                  "-o", f"-k {self.sockets} -h 127.0.0.1 -p {self.port} -c fsync=off", "start")

        def ready():
            with psycopg.connect(self.url(), connect_timeout=1) as connection:
                return connection.execute("SELECT 1").fetchone() == (1,)

        _wait("postgres", None, ready, self.log_path)
        return self

    def create_database(self):
        """A fresh empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self):
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real Redis for the whole session; tests that need it empty call flush()."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL cluster for the whole session; create_database() gives each test its own."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def auth_database_url(request):
    """AUTH_DATABASE_URL for the auth store tests, once per engine: empty (SQLite), then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres_server").create_database()
