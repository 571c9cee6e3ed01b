"""Token lifecycle through the real Nginx with several validator workers: logout, refresh reuse,
user revocation and key rotation under load."""

import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from jose import jwt

from jwtgate.logs import fingerprint
from tests.conftest import start_stack


WORKERS = 4
DEADLINE = 5.0


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    running = start_stack(tmp_path_factory, "lifecycle", VALIDATOR_WORKERS=str(WORKERS),
                          AUTH_KEY_ACTIVATION_DELAY_SECONDS="2", VALIDATOR_JWKS_REFRESH_SECONDS="1",
                          VALIDATOR_LOG_LEVEL="debug")
    yield running
    running.close()


def login_body(running):
    response = running.client.post("/api/auth/login", json={"username": running.username,
                                                            "password": running.password})
    assert response.status_code == 200
    return response.json()


def statuses(running, token, count=64):
    """Statuses of `count` protected requests sent 8 at a time, so they spread over the validator workers."""
    def one(_):
        return running.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def refusal_delay(running, token, revoked_at, applied_when=lambda record: record["event"] == "revocations applied",
                  reason="revoked"):
    """Seconds from revoked_at until every validator worker had logged a record applied_when accepts.

    Then requests spread over the workers must all be refused, and no worker may
    accept the token after it first refused it with `reason`.
    """
    applied = running.every_validator_worker_logged(revoked_at, applied_when, DEADLINE)
    assert len(applied) == WORKERS
    assert set(statuses(running, token)) == {401}
    fp = fingerprint(token)
    verdicts = defaultdict(list)
    for record in running.validator_records():
        if record.get("token_fp") == fp and record["event"].startswith("verify"):
            verdicts[record["pid"]].append(record.get("reason") or record["result"])
    for pid, seen in verdicts.items():
        if reason in seen:
            assert set(seen[seen.index(reason):]) == {reason}, pid
    return max(applied.values()) - revoked_at


def cli(running, *args):
    result = subprocess.run([sys.executable, "-m", "auth_api", *args], env=running.stack.service_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_logout_reaches_every_worker_and_cached_verdicts(lifecycle):
    delays = []
    for _ in range(8):
        body = login_body(lifecycle)
        assert set(statuses(lifecycle, body["access_token"])) == {200}
        # Measured from before the logout request: the bound includes the logout itself.
        revoked_at = time.time()
        response = lifecycle.client.post("/api/auth/logout",
                                         headers={"Authorization": f"Bearer {body['access_token']}"})
        assert response.status_code == 204
        delays.append(refusal_delay(lifecycle, body["access_token"], revoked_at))
        refused = lifecycle.client.get("/api/protected/", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert refused.json()["error"] == "revoked"
        assert lifecycle.client.post("/api/auth/refresh",
                                     json={"refresh_token": body["refresh_token"]}).status_code == 401
    delays.sort()
    print(f"logout to every worker refusing, over {len(delays)} runs: p50 {statistics.median(delays) * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms")


def test_refresh_reuse_revokes_the_whole_family(lifecycle):
    first = login_body(lifecycle)
    second = lifecycle.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    for token in (first["access_token"], second["access_token"]):
        assert set(statuses(lifecycle, token, 16)) == {200}
    since = time.time()
    reuse = lifecycle.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    for token in (first["access_token"], second["access_token"]):
        refusal_delay(lifecycle, token, since)
    assert lifecycle.client.post("/api/auth/refresh",
                                 json={"refresh_token": second["refresh_token"]}).status_code == 401


def test_user_cutoff_revokes_every_token_issued_before(lifecycle):
    tokens = [login_body(lifecycle)["access_token"] for _ in range(3)]
    for token in tokens:
        assert set(statuses(lifecycle, token, 8)) == {200}
    since = time.time()
    cli(lifecycle, "users", "revoke", lifecycle.username)
    for token in tokens:
        refusal_delay(lifecycle, token, since)
    # Tokens issued in the cutoff's own second are refused too; the next second's are fine.
    time.sleep(1.1)
    assert set(statuses(lifecycle, login_body(lifecycle)["access_token"], 8)) == {200}


def test_refresh_token_is_never_a_bearer_token(lifecycle):
    body = login_body(lifecycle)
    response = lifecycle.client.get("/api/protected/", headers={"Authorization": f"Bearer {body['refresh_token']}"})
    assert response.status_code == 401
    assert lifecycle.client.post("/api/auth/refresh",
                                 json={"refresh_token": body["access_token"]}).status_code == 401


def test_key_rotation_under_load_fails_no_valid_request(lifecycle):
    kids = [jwt.get_unverified_header(login_body(lifecycle)["access_token"])["kid"]]
    old_token = login_body(lifecycle)["access_token"]
    stop = threading.Event()
    results = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def load():
        while not stop.is_set():
            token = login_body(lifecycle)["access_token"]
            for sent in (token, old_token):
                headers = {"Authorization": f"Bearer {sent}"}
                status = lifecycle.client.get("/api/protected/", headers=headers).status_code
                with lock:
                    if status == 200:
                        results["ok"] += 1
                    else:
                        results["failed"].append((status, jwt.get_unverified_header(sent)["kid"]))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2):
            cli(lifecycle, "keys", "rotate")
            deadline = time.time() + 15
            while time.time() < deadline:
                kid = jwt.get_unverified_header(login_body(lifecycle)["access_token"])["kid"]
                if kid != kids[-1]:
                    kids.append(kid)
                    break
                time.sleep(0.2)
            time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(set(kids)) == 3, kids
    assert results["failed"] == []
    assert results["ok"] > 10
    print(f"key rotation under load: {results['ok']} valid requests, 0 failed, kids {len(set(kids))}")


def test_a_key_pulled_from_the_jwks_takes_its_cached_verdicts_with_it(lifecycle):
    # A compromised key is pulled: a new one is published, the old file deleted. Every worker has a
    # cached verdict for a token it signed; once its next JWKS refresh (1 s here) drops the key, it
    # refuses the token and never accepts it again. A few requests refused prove nothing: they may
    # all have reached workers whose refresh came first, so each worker's own log is waited for.
    token = login_body(lifecycle)["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    assert set(statuses(lifecycle, token)) == {200}
    cli(lifecycle, "keys", "rotate")
    (key_file,) = (lifecycle.stack.data_dir / "keys").glob(f"*-{kid}.pem")
    pulled_at = time.time()
    key_file.unlink()
    refusal_delay(lifecycle, token, pulled_at, reason="unknown_key",
                  applied_when=lambda record: record["event"] == "jwks keys retired" and kid in record["kid"])
    response = lifecycle.client.get("/api/protected/", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["error"] == "unknown_key"
    # Tokens of the keys still published pass.
    assert set(statuses(lifecycle, login_body(lifecycle)["access_token"])) == {200}
