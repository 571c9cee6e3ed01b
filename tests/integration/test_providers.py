"""Several identity providers at once, through real Nginx: our auth API and a real OpenID provider.

The OpenID provider is oidc-provider (examples/oidc-provider/provider.mjs), found by OpenID discovery; our
auth API by its RFC 8414 metadata, over its unix socket. Each test starts what it disturbs.
"""

import json
import os
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jwtgate.loopback import http_get
from launcher.stack import Stack
from tests.conftest import RunningStack, free_port
from tests.oidc_support import AUDIENCE, OidcProvider, providers_file

STALENESS_SECONDS = 4
OTHER_API = "https://other.example/"


def start(tmp_path, oidc, environ=(), **oidc_fields):
    stack = Stack(tmp_path / "stack", listen=f"127.0.0.1:{free_port()}", environ={
        **os.environ,
        "VALIDATOR_PROVIDERS_FILE": str(tmp_path / "providers.toml"),
        # A refresh a second, so that an outage and a rotation show within a test's time.
        "VALIDATOR_JWKS_REFRESH_SECONDS": "1",
        "VALIDATOR_JWKS_MIN_REFRESH_SECONDS": "1",
        "VALIDATOR_JWKS_MAX_STALENESS_SECONDS": str(STALENESS_SECONDS),
        **dict(environ),
    })
    providers_file(tmp_path / "providers.toml", stack, oidc, **oidc_fields)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    return RunningStack(stack)


@pytest.fixture
def oidc(tmp_path):
    provider = OidcProvider(tmp_path / "oidc", resources=(AUDIENCE, OTHER_API)).start()
    yield provider
    provider.stop()


@pytest.fixture
def gateway(tmp_path, oidc):
    running = start(tmp_path, oidc)
    yield running
    running.close()


def call(gateway, token, path="/api/protected/x"):
    return gateway.client.get(path, headers={"Authorization": f"Bearer {token}"})


def readiness(gateway):
    status, body = http_get("http://localhost/readyz", unix_socket=gateway.stack.socket("validator"), timeout=5)
    return status, json.loads(body)


def key_metrics(gateway):
    """{(metric, provider): value} of the validator's key metrics, from one worker's /metrics."""
    status, body = http_get("http://localhost/metrics", unix_socket=gateway.stack.socket("validator"), timeout=5)
    assert status == 200
    return {(sample.name, sample.labels["provider"]): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples
            if sample.name.startswith("validator_jwks_")}


def until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_token_of_the_openid_provider_passes_with_its_identity(gateway, oidc, alg):
    response = call(gateway, oidc.token(alg=alg))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userId"] == oidc.client_id
    assert body["scopes"] == ["api:read", "api:write"] and body["roles"] == ["user"]


def test_our_own_tokens_work_alongside(gateway, oidc):
    assert call(gateway, oidc.token()).status_code == 200
    response = call(gateway, gateway.login())
    assert response.status_code == 200 and response.json()["userId"] == gateway.username


def test_a_location_restricted_to_one_provider_refuses_the_other(gateway, oidc):
    refused = call(gateway, oidc.token(), "/api/staff/x")
    assert refused.status_code == 401 and refused.json()["error"] == "wrong_issuer"
    assert call(gateway, gateway.login(), "/api/staff/x").status_code == 200


def test_a_token_for_another_api_of_the_same_provider_is_refused(gateway, oidc):
    # Signed by the provider we trust, for a resource that is not ours (RFC 8707): the audience decides.
    refused = call(gateway, oidc.token(resource=OTHER_API))
    assert refused.status_code == 401 and refused.json()["error"] == "wrong_audience"
    assert call(gateway, oidc.token()).status_code == 200


def test_a_token_of_a_provider_nobody_configured_is_refused(tmp_path, gateway):
    stranger = OidcProvider(tmp_path / "stranger").start()
    try:
        refused = call(gateway, stranger.token())
        assert refused.status_code == 401 and refused.json()["error"] == "wrong_issuer"
    finally:
        stranger.stop()


def test_a_key_rotation_at_the_provider_fails_no_request(gateway, oidc):
    before = oidc.token()
    assert call(gateway, before).status_code == 200
    new_kid = oidc.rotate(keep_old=True)
    after = oidc.token()
    assert json.loads(httpx.get(oidc.discovery()["jwks_uri"]).text)["keys"][0]["kid"] == new_kid
    # The new kid is unknown to the validator until it refetches: the first request makes it do so.
    assert [call(gateway, token).status_code for token in (after, before, after)] == [200, 200, 200]


def test_a_provider_that_stops_answering_loses_its_tokens_and_readiness_names_it(gateway, oidc):
    token = oidc.token()
    own = gateway.login()
    assert call(gateway, token).status_code == 200
    oidc.stop()
    # Within the staleness bound its last good keys still serve; after it, its tokens are refused.
    assert until(lambda: call(gateway, token).status_code == 401, STALENESS_SECONDS + 30)
    assert call(gateway, token).json()["error"] == "unknown_key"
    assert call(gateway, own).status_code == 200
    status, body = readiness(gateway)
    assert status == 200 and body["providers_without_keys"] == ["oidc"], body
    # The metrics tell the two providers apart: one provider's outage shows while the other's keys flow.
    assert until(lambda: key_metrics(gateway).get(("validator_jwks_keys", "oidc")) == 0, 10)
    seen = key_metrics(gateway)
    assert seen[("validator_jwks_keys", "jwtgate")] >= 1
    assert seen[("validator_jwks_age_seconds", "oidc")] > STALENESS_SECONDS
    assert seen[("validator_jwks_age_seconds", "jwtgate")] >= 0
    assert seen[("validator_jwks_fetch_failures_total", "oidc")] >= 1
    oidc.start()
    assert until(lambda: call(gateway, oidc.token()).status_code == 200, 30)
    assert readiness(gateway)[1]["providers_without_keys"] == []


def test_a_provider_unreachable_at_start_leaves_the_validator_up_for_the_others(tmp_path):
    down = OidcProvider(tmp_path / "down")
    running = start(tmp_path, down)
    try:
        status, body = readiness(running)
        assert status == 200 and body["providers_without_keys"] == ["oidc"], body
        assert call(running, running.login()).status_code == 200
        down.start()
        try:
            assert until(lambda: call(running, down.token()).status_code == 200, 30)
        finally:
            down.stop()
    finally:
        running.close()


@pytest.mark.parametrize("revocations", [True, False])
def test_a_provider_outside_the_revocation_store_keeps_working_when_the_store_cannot_be_read(tmp_path, oidc,
                                                                                             revocations):
    # The store holds our auth API's logouts; `revocations = false` says none of them are the provider's.
    running = start(tmp_path, oidc, environ={"VALIDATOR_REVOCATION_MAX_STALENESS_SECONDS": "1"},
                    revocations=revocations)
    try:
        ours, theirs = running.login(), oidc.token()
        assert call(running, ours).status_code == 200 and call(running, theirs).status_code == 200
        (running.stack.data_dir / "revocations.db").rename(tmp_path / "revocations.db.away")

        def statuses(token):
            return {call(running, token).status_code for _ in range(8)}

        # Fail closed for the tokens the store speaks for: a logout may be in what cannot be read. Each
        # validator worker goes stale on its own clock; these waits end once the samples agree.
        assert until(lambda: statuses(ours) == {401}, 15)
        assert call(running, ours).json()["error"] == "revocation_unavailable"
        answers = []
        assert until(lambda: answers.append(readiness(running)) or answers[-1][1]["revocations_stale"], 15)
        if revocations:
            assert until(lambda: statuses(theirs) == {401}, 15)
            assert call(running, theirs).json()["error"] == "revocation_unavailable"
            # Not ready: such a worker lets no token through.
            assert answers[-1][0] == 503 and answers[-1][1]["problems"] == ["revocations_stale"]
        else:
            assert statuses(theirs) == {200}
            # Still ready: the other provider's tokens pass.
            assert answers[-1][0] == 200 and answers[-1][1]["problems"] == []
    finally:
        running.close()
