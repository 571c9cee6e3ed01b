"""The local stack's replica settings: one upstream server line per replica, and none added by default."""

import pytest

from launcher.stack import NGINX_DIR, Stack, StackError, render

pytestmark = pytest.mark.unit


def rendered(stack):
    template = (NGINX_DIR / "templates" / "gateway.conf.template").read_text()
    return render(template, stack.nginx_variables())


def test_one_replica_is_the_config_as_before(tmp_path):
    stack = Stack(tmp_path, environ={})
    assert stack.replicas("validator") == ["validator"]
    assert stack.with_replicas(rendered(stack)) == rendered(stack)


def test_each_replica_gets_a_socket_an_upstream_line_and_its_own_metrics(tmp_path):
    stack = Stack(tmp_path, environ={"JWTGATE_VALIDATOR_REPLICAS": "3", "JWTGATE_AUTH_REPLICAS": "2"})
    assert stack.replicas("validator") == ["validator", "validator-2", "validator-3"]
    assert stack.replicas("backend") == ["backend"]
    config = stack.with_replicas(rendered(stack))
    for name in ("validator", "validator-2", "validator-3", "auth_api", "auth_api-2"):
        assert config.count(f"server unix:{stack.socket(name)} max_fails=2 fail_timeout=5s;") == 1
    env = stack.replica_env("auth_api-2")
    assert env["AUTH_BIND"] == f"unix:{stack.socket('auth_api-2')}"
    assert env["PROMETHEUS_MULTIPROC_DIR"].endswith("/metrics/auth_api-2")
    assert "VALIDATOR_BIND" not in stack.replica_env("validator")


@pytest.mark.parametrize("value", ["0", "17", "two"])
def test_bad_replica_counts_stop_start_up(tmp_path, value):
    with pytest.raises(StackError, match="JWTGATE_VALIDATOR_REPLICAS"):
        Stack(tmp_path, environ={"JWTGATE_VALIDATOR_REPLICAS": value, "VALIDATOR_JWKS_URL": "http://x/j"}
              ).check_settings()
