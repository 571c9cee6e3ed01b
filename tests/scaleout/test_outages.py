"""A shared service going down and coming back, seen through the real Nginx of a whole stack: the user
store's PostgreSQL (logins refused with 503, issued tokens still accepted) and the revocation Redis
(logouts refused with 503, tokens refused once the validator's revocation set is too stale)."""

import time

import pytest

from auth_api.database import POOL_TIMEOUT_SECONDS
from tests.conftest import start_stack
from tests.services import PostgresServer, RedisServer


# VALIDATOR_REVOCATION_MAX_STALENESS_SECONDS for the Redis stack: small, so fail-closed comes quickly.
MAX_STALENESS = 3
# Slack for a loaded 2-core machine: the 200 ms poll, scheduling, Nginx and the request itself.
SLACK = 2.5
# How long the PostgreSQL outage lasts: a restart or failover.
OUTAGE = 17.0
# Generous bound on waiting for a recovery; the tests then assert how long it took.
RECOVERY_DEADLINE = 30.0


class RestartablePostgres(PostgresServer):
    """PostgresServer whose server process can be stopped and started again on its port and data directory."""

    def halt(self):
        # A crash rather than a polite shutdown: clients find out when they next use a connection.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def resume(self):
        # The options of PostgresServer.start(); -w waits until the server accepts connections.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "30",
                  "-o", f"-k {self.sockets} -h 127.0.0.1 -p {self.port} -c fsync=off", "start")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(running):
    return running.client.post("/api/auth/login", json={"username": running.username, "password": running.password},
                               timeout=60.0)


def protected(running, token):
    return running.client.get("/api/protected/", headers=bearer(token))


def wait_for(probe, deadline, what):
    """Call probe() every 0.1 s until it returns true; the seconds that took, or fail at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if probe():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {deadline:.0f}s")


def assert_unavailable(response, *secrets):
    """The auth API's documented outage answer (app.handle_unavailable), passed through by Nginx."""
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "auth_unavailable"
    assert response.headers["Retry-After"] == "5"
    for leak in ("Traceback", "psycopg", "redis", "Error", *secrets):
        assert leak not in response.text


@pytest.fixture(scope="module")
def postgres():
    server = RestartablePostgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_stack(tmp_path_factory, postgres):
    running = start_stack(tmp_path_factory, "pg-outage", AUTH_DATABASE_URL=postgres.create_database())
    yield running
    running.close()


@pytest.fixture
def redis_stack(tmp_path_factory, tmp_path):
    server = RedisServer(tmp_path).start()
    running = start_stack(tmp_path_factory, "redis-outage", VALIDATOR_REVOCATION_DB=server.url,
                          AUTH_REVOCATION_DB=server.url,
                          VALIDATOR_REVOCATION_MAX_STALENESS_SECONDS=str(MAX_STALENESS))
    yield running, server
    running.close()
    server.stop()


def test_postgres_down_refuses_logins_with_503_but_issued_tokens_still_work(postgres_stack, postgres):
    token = postgres_stack.login()
    postgres.halt()
    halted = time.monotonic()
    try:
        waits = []
        # Logins for the length of a short restart or failover, each answered within the pool's timeout.
        while time.monotonic() - halted < OUTAGE:
            started = time.monotonic()
            response = login(postgres_stack)
            waits.append(time.monotonic() - started)
            assert_unavailable(response, postgres_stack.password, token)
            assert waits[-1] < POOL_TIMEOUT_SECONDS + SLACK, f"503 only after {waits[-1]:.1f}s"
        # The validator checks signatures with the JWKS it already holds: no database involved.
        assert protected(postgres_stack, token).status_code == 200
    finally:
        postgres.resume()
    statuses = []
    recovery = wait_for(lambda: statuses.append(login(postgres_stack).status_code) or statuses[-1] == 200,
                        RECOVERY_DEADLINE, "login after restart")
    assert set(statuses) <= {200, 503}, statuses
    print(f"postgres down {OUTAGE:.0f}s: {len(waits)} logins answered 503 after "
          f"{', '.join(f'{wait:.1f}' for wait in waits)}s; first 200 login {recovery:.1f}s after the restart")
    # However long the outage was, logins come back about as soon as PostgreSQL does.
    assert recovery < POOL_TIMEOUT_SECONDS + SLACK, f"logins refused for {recovery:.1f}s after the restart"
    assert protected(postgres_stack, postgres_stack.login()).status_code == 200


def test_a_quick_postgres_restart_costs_no_login(postgres_stack, postgres):
    # Every pooled connection of both auth API workers is open before, broken after the restart.
    for _ in range(4):
        assert login(postgres_stack).status_code == 200
    postgres.halt()
    postgres.resume()
    # The pool checks a connection before handing it out: a broken one is replaced, not used.
    assert [login(postgres_stack).status_code for _ in range(6)] == [200] * 6


def test_redis_down_refuses_logouts_then_fails_closed_and_recovers(redis_stack):
    running, redis_server = redis_stack
    token = running.login()
    assert protected(running, token).status_code == 200
    redis_server.stop()
    stopped = time.monotonic()
    # Within the staleness bound the last synced set still answers.
    assert protected(running, token).status_code == 200
    # A logout that cannot reach the validators says so, rather than a 204 that revoked nothing.
    assert_unavailable(running.client.post("/api/auth/logout", headers=bearer(token)), token)

    last_accepted, first_refused = stopped, None
    refusals = []
    while time.monotonic() - stopped < MAX_STALENESS + SLACK + 1.5:
        # An acceptance counts from when it was asked for, a refusal from when it came back: on a
        # loaded machine a slow answer then never reads as the bound broken.
        sent = time.monotonic()
        response = protected(running, token)
        if response.status_code == 200:
            last_accepted = sent
        else:
            first_refused = first_refused or time.monotonic()
            refusals.append(response)
        time.sleep(0.05)
    assert first_refused is not None, "never failed closed"
    # Accepted up to the bound (each validator worker goes stale on its own clock), refused after it.
    assert first_refused - stopped > MAX_STALENESS - 1, f"refused already {first_refused - stopped:.1f}s on"
    assert last_accepted - stopped <= MAX_STALENESS + SLACK, f"still accepted {last_accepted - stopped:.1f}s on"
    assert {response.status_code for response in refusals} == {401}
    assert {response.json()["error"] for response in refusals} == {"revocation_unavailable"}
    assert 'error="invalid_token"' in refusals[-1].headers["WWW-Authenticate"]
    print(f"redis down: first 401 {first_refused - stopped:.2f}s, last 200 {last_accepted - stopped:.2f}s "
          f"after the stop (VALIDATOR_REVOCATION_MAX_STALENESS_SECONDS={MAX_STALENESS})")

    redis_server.start()
    restarted = time.monotonic()
    # The 503 logout revoked nothing, so the same token is good again once the validators can sync:
    # ten answers in a row, so every validator worker has synced, not just one.
    recovery = wait_for(lambda: all(protected(running, token).status_code == 200 for _ in range(10)),
                        RECOVERY_DEADLINE, "token accepted after restart")
    assert running.client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    refused = wait_for(lambda: protected(running, token).status_code == 401, RECOVERY_DEADLINE,
                       "token refused after its logout")
    assert protected(running, token).json()["error"] == "revoked"
    print(f"redis restarted: token accepted again {recovery:.2f}s later; logout refused it "
          f"{refused * 1000:.0f} ms after its 204 ({time.monotonic() - restarted:.1f}s after the restart)")
