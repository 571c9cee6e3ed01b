"""Faults under sustained load through the real Nginx: workers killed, services reloaded, the auth API
killed mid-write. Valid tokens keep passing, invalid ones never do, and no committed write is lost.

The load is bounded (a few threads, a request cap and a deadline per run) and goes to loopback
only. Each run prints its counts; the assertions count outcomes, never time them.
"""

import base64
import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import children, start_stack
from tests.minting import RsaSigner, claims, rs256


THREADS = 4
VALIDATOR_WORKERS = 3
MAX_REQUESTS_PER_THREAD = 4000
RUN_DEADLINE_SECONDS = 90
# Requests the load must have answered before a fault, and after the stack is whole again.
BEFORE_FAULT = 200
AFTER_RECOVERY = 300


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A stack of its own with several validator workers, since these tests kill its processes."""
    running = start_stack(tmp_path_factory, "faults-load", VALIDATOR_WORKERS=str(VALIDATOR_WORKERS))
    yield running
    running.close()


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def invalid_tokens(valid, stack_pem, kid, issuer):
    """Tokens that must never pass: tampered, expired, foreign-signed, garbage."""
    header, payload, signature = valid.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    now = time.time()
    stack_signer = RsaSigner.from_pem(stack_pem, kid)
    return [
        f"{header}.{payload}.{flipped}",
        rs256(stack_signer, claims(now, iss=issuer, iat=int(now) - 2000, exp=int(now) - 1000)),
        rs256(RsaSigner(kid=kid), claims(now, iss=issuer)),
        "not.a.token",
    ]


class Load:
    """Threads sending valid and invalid tokens through Nginx, counting every outcome."""

    def __init__(self, url, valid, invalid):
        self.url = url
        self.valid = valid
        self.invalid = invalid
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.valid_statuses = collections.Counter()
        self.invalid_statuses = collections.Counter()
        self.answered = 0
        self.threads = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(THREADS)]

    def _run(self, index):
        deadline = time.monotonic() + RUN_DEADLINE_SECONDS
        # Half valid, half each kind of invalid in turn.
        tokens = [pair for token in self.invalid for pair in ((True, self.valid), (False, token))]
        # No keepalive: a closed idle connection is the client's race, not the gateway's answer.
        with httpx.Client(base_url=self.url, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for number in range(MAX_REQUESTS_PER_THREAD):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                valid, token = tokens[(number + index) % len(tokens)]
                try:
                    status = client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code
                except httpx.TransportError as error:
                    status = type(error).__name__
                with self.lock:
                    (self.valid_statuses if valid else self.invalid_statuses)[status] += 1
                    self.answered += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def wait_answered(self, count):
        target = self.answered + count
        wait_for(lambda: self.answered >= target or not any(t.is_alive() for t in self.threads),
                 f"{count} more answers")
        assert self.answered >= target, "the load threads stopped early"

    def report(self, what):
        valid_rejected = sum(n for status, n in self.valid_statuses.items() if status != 200)
        invalid_accepted = self.invalid_statuses[200]
        print(f"\n[{what}] valid: {dict(self.valid_statuses)}  invalid: {dict(self.invalid_statuses)}  "
              f"valid rejected: {valid_rejected}  invalid accepted: {invalid_accepted}")
        return valid_rejected, invalid_accepted


@pytest.fixture
def tokens(loaded):
    valid = loaded.login()
    kid = json.loads(base64.urlsafe_b64decode(valid.split(".")[0] + "==="))["kid"]
    return valid, invalid_tokens(valid, loaded.private_key_pem(), kid, loaded.issuer)


def test_kill_9_of_one_validator_worker_under_load(loaded, tokens):
    master = loaded.stack.processes["validator"].pid
    workers = children(master)
    assert len(workers) == VALIDATOR_WORKERS
    victim = min(workers)
    with Load(loaded.url, *tokens) as load:
        load.wait_answered(BEFORE_FAULT)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in children(master) and len(children(master)) == VALIDATOR_WORKERS,
                 "gunicorn replaced the killed worker")
        load.wait_answered(AFTER_RECOVERY)
    valid_rejected, invalid_accepted = load.report("kill -9 of a validator worker")
    assert invalid_accepted == 0
    # Only requests in flight on the killed worker may fail (503, never 200): at most one per thread.
    assert valid_rejected <= THREADS
    assert set(load.valid_statuses) <= {200, 503}


HUP_RELOADS = 3


def test_gunicorn_hup_reload_of_the_validator_under_load(loaded, tokens):
    master = loaded.stack.processes["validator"].pid
    with Load(loaded.url, *tokens) as load:
        for _ in range(HUP_RELOADS):
            old = children(master)
            load.wait_answered(BEFORE_FAULT)
            os.kill(master, signal.SIGHUP)
            wait_for(lambda: not (children(master) & old) and len(children(master)) == VALIDATOR_WORKERS,
                     "every validator worker replaced")
        load.wait_answered(AFTER_RECOVERY)
    load.report(f"{HUP_RELOADS} gunicorn HUPs of the validator")
    # Old workers stop accepting, answer what is already on its way, and only then close their
    # idle connections (validator.worker.DrainingServer); Nginx retries a kept-alive connection
    # closed under it. So no check fails. With uvicorn's own stop, which resets the connections
    # a worker accepted just before, about one reload in four cost a check (a 503).
    assert set(load.valid_statuses) == {200}
    assert set(load.invalid_statuses) == {401}


def test_nginx_reload_under_load(loaded, tokens):
    master = loaded.stack.processes["nginx"].pid
    old = children(master)
    with Load(loaded.url, *tokens) as load:
        load.wait_answered(BEFORE_FAULT)
        # What `nginx -s reload` does: SIGHUP to the master, new workers, old ones finish gracefully.
        os.kill(master, signal.SIGHUP)
        wait_for(lambda: not (children(master) & old) and children(master), "every Nginx worker replaced")
        load.wait_answered(AFTER_RECOVERY)
    valid_rejected, invalid_accepted = load.report("nginx reload")
    assert (valid_rejected, invalid_accepted) == (0, 0)


# --- kill -9 of the auth API during logins and revocations --------------------------------


def claims_of(token):
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))


def cli(stack, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "auth_api", *args], env=stack.service_env(), input=stdin,
                          capture_output=True, text=True, timeout=60)


def integrity(path):
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA integrity_check").fetchall()


class Writers:
    """Logins (each a session row) and login+logout cycles (each a committed revocation) in threads."""

    def __init__(self, url, username, password):
        self.url = url
        self.credentials = {"username": username, "password": password}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sessions = []      # sid of every login answered 200
        self.revoked = []       # (jti, token) of every logout answered 204
        self.failures = collections.Counter()
        self.threads = [threading.Thread(target=self._logins, daemon=True),
                        threading.Thread(target=self._logouts, daemon=True)]

    def _login(self, client):
        response = client.post("/api/auth/login", json=self.credentials)
        if response.status_code != 200:
            with self.lock:
                self.failures[f"login {response.status_code}"] += 1
            if response.status_code == 429:
                # Nginx's per-address login rate: wait as told (or until stopped) instead of spinning.
                self.stop.wait(float(response.headers["retry-after"]))
            return None
        token = response.json()["access_token"]
        with self.lock:
            self.sessions.append(claims_of(token)["sid"])
        return token

    def _loop(self, step):
        deadline = time.monotonic() + RUN_DEADLINE_SECONDS
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            for _ in range(500):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    step(client)
                except httpx.TransportError as error:
                    with self.lock:
                        self.failures[type(error).__name__] += 1

    def _logins(self):
        self._loop(self._login)

    def _logouts(self):
        def cycle(client):
            token = self._login(client)
            if token is None:
                return
            response = client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
            with self.lock:
                if response.status_code == 204:
                    self.revoked.append((claims_of(token)["jti"], token))
                else:
                    self.failures[f"logout {response.status_code}"] += 1
        self._loop(cycle)

    def count(self):
        with self.lock:
            return len(self.sessions) + len(self.revoked)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_kill_9_of_the_auth_api_during_logins_and_revocations_loses_nothing(loaded, tmp_path):
    stack = loaded.stack
    password = "a long and uncommon password 4 tests"
    for index in range(5):
        assert cli(stack, "users", "add", f"writer{index}", "--password-stdin", stdin=password).returncode == 0
    users_before = cli(stack, "users", "list").stdout
    with Writers(loaded.url, "writer0", password) as writers:
        wait_for(lambda: writers.count() >= 8, "some logins and logouts committed")
        # An online backup while the writes go on.
        backup = cli(stack, "db", "backup", str(tmp_path / "backup"))
        assert backup.returncode == 0, backup.stderr
        wait_for(lambda: writers.count() >= 16, "more logins and logouts committed")
        stack.stop_process("auth_api", signal.SIGKILL)
        # The writers go on against the dead auth API: refused (503), so nothing to commit.
        refused = sum(writers.failures.values())
        wait_for(lambda: sum(writers.failures.values()) >= refused + 2, "attempts refused while it is down")
    print(f"\n[kill -9 of the auth API] sessions committed: {len(writers.sessions)}  "
          f"revocations committed: {len(writers.revoked)}  refused: {dict(writers.failures)}")
    data = stack.data_dir
    for database in ("auth.db", "revocations.db"):
        assert integrity(data / database) == [("ok",)], database
        assert integrity(tmp_path / "backup" / database) == [("ok",)], database
    assert cli(stack, "users", "list").stdout == users_before
    with sqlite3.connect(data / "auth.db") as connection:
        sessions = {row[0] for row in connection.execute("SELECT id FROM sessions")}
    with sqlite3.connect(data / "revocations.db") as connection:
        revoked = {row[0] for row in connection.execute("SELECT value FROM revocations WHERE kind = 'jti'")}
    assert set(writers.sessions) <= sessions
    assert {jti for jti, _ in writers.revoked} <= revoked
    with sqlite3.connect(tmp_path / "backup" / "auth.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM users WHERE username LIKE 'writer%'").fetchone() == (5,)

    # Back up: logins work, and every committed revocation still refuses its token at the gateway.
    stack.start_process("auth_api")
    assert loaded.login("writer1", password)
    for _, token in writers.revoked[-3:]:
        response = loaded.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and response.json()["error"] == "revoked"


def test_auth_api_down_answers_login_with_json_503(loaded):
    token = loaded.login()
    loaded.stack.stop_process("auth_api", signal.SIGKILL)
    try:
        for path, body in (("/api/auth/login", {"username": "demo", "password": "x" * 12}),
                           ("/api/auth/refresh", {"refresh_token": "x" * 43}),
                           ("/api/auth/logout", {})):
            response = loaded.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503, path
            assert response.headers["content-type"] == "application/json"
            assert response.headers["retry-after"] == "5"
            assert response.json() == {"error": "auth_unavailable", "message": "Authentication service unavailable"}
        jwks = loaded.client.get("/.well-known/jwks.json")
        assert jwks.status_code == 503 and jwks.json()["error"] == "auth_unavailable"
        # Keys are cached by the validator: existing tokens keep working.
        assert loaded.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        loaded.stack.start_process("auth_api")
    assert loaded.login()
