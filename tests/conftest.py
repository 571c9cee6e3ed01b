"""Fixtures that start the real stack (Nginx and three gunicorn apps) and show its logs on failure."""

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from launcher.stack import Stack
# Real Redis and PostgreSQL servers, and the auth store engines, for the scale-out tests.
from tests.services import auth_database_url, free_port, postgres_server, redis_server  # noqa: F401
# A real OpenID provider (oidc-provider from node_modules) for the tests of other identity providers.
from tests.oidc_support import oidc_provider  # noqa: F401

_STACKS = []
_TESTS = Path(__file__).resolve().parent
# Each directory holds one kind of test and gets its marker here, so the two cannot disagree
# (`make test-unit` and `make test-integration` select by marker).
DIRECTORY_MARKERS = {"unit": "unit", "fuzz": "unit", "integration": "integration", "security": "integration",
                     "scaleout": "integration", "e2e": "e2e"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        directory = item.path.relative_to(_TESTS).parts[0]
        if directory not in DIRECTORY_MARKERS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in one of tests/{{{','.join(DIRECTORY_MARKERS)}}}")
        item.add_marker(DIRECTORY_MARKERS[directory])


def _log_time(stamp):
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def children(pid):
    """Pids whose parent is pid (gunicorn's workers, Nginx's workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after it are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


class RunningStack:
    """A started Stack plus what tests need from it: a client, the demo login, the backend's log."""

    def __init__(self, stack):
        self.stack = stack
        self.url = stack.url
        # The `iss` tokens minted for this stack carry: the gateway's URL unless AUTH_ISSUER says otherwise.
        self.issuer = stack.issuer
        self.client = httpx.Client(base_url=stack.url, timeout=10.0)
        (self.username, self.password), (self.admin, self.admin_password) = stack.demo_credentials()

    def login(self, username=None, password=None):
        response = self.client.post("/api/auth/login", json={"username": username or self.username,
                                                             "password": password or self.password})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def backend_hits(self):
        """Requests that reached the backend, as (method, path, user) from its JSON log."""
        hits = []
        path = self.stack.log_path("backend")
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "request":
                hits.append((record.get("method"), record.get("path"), record.get("user")))
        return hits

    def access_log_ids(self, path):
        """The request ids of Nginx's access log lines for path, oldest first."""
        lines = self.stack.log_path("nginx-access").read_text().splitlines()
        return [record["request_id"] for record in map(json.loads, lines) if record["path"] == path]

    def request_id_of(self, path, send):
        """Call send(), a request for path; return its request id from Nginx's access log.

        Nginx writes the line just after the answer, so a client can read the log before it is there.
        """
        seen = len(self.access_log_ids(path))
        send()
        deadline = time.monotonic() + 10
        while len(ids := self.access_log_ids(path)) <= seen:
            assert time.monotonic() < deadline, f"no access log line for {path}"
            time.sleep(0.05)
        return ids[-1]

    def validator_records(self):
        """The validator's JSON log records, oldest first."""
        text = self.stack.log_path("validator").read_text()
        # Only whole lines: a worker may be writing the last one while it is read.
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    def every_validator_worker_logged(self, since, accepts, seconds=5.0):
        """{pid: time} of the first record `accepts` each live validator worker logged at or after `since`.

        Waits (at most `seconds`) for all of them: a change that every worker applies on its own
        timer is only in force everywhere once each has said so, and a sample of requests may
        never reach the last one.
        """
        workers = children(self.stack.processes["validator"].pid)
        assert workers, "the validator has no workers"
        seen = {}
        deadline = time.time() + seconds
        while len(seen) < len(workers) and time.time() < deadline:
            time.sleep(0.02)
            for record in self.validator_records():
                moment = _log_time(record["time"])
                if record["pid"] in workers and moment >= since and accepts(record):
                    seen.setdefault(record["pid"], moment)
        assert set(seen) == workers, f"not every validator worker applied the change within {seconds:.0f} s"
        return seen

    def private_key_pem(self):
        """The stack's active signing key, read from its data directory (tests only)."""
        return sorted((self.stack.data_dir / "keys").glob("*.pem"))[-1].read_bytes()

    def close(self):
        self.client.close()
        self.stack.stop()


def start_stack(tmp_path_factory, name, **environ):
    import os

    stack = Stack(Path(tmp_path_factory.mktemp(name)), listen=f"127.0.0.1:{free_port()}",
                  environ={**os.environ, **environ})
    _STACKS.append(stack)
    stack.start()
    return RunningStack(stack)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """The stack as `make run` starts it, shared by the tests that do not disturb it."""
    running = start_stack(tmp_path_factory, "gateway")
    yield running
    running.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACKS:
        for stack in _STACKS:
            for name in ("nginx-error", "validator", "auth_api", "backend", "nginx"):
                report.sections.append((f"{stack.data_dir.name} {name} log", stack.log_tail(name, 25)))
