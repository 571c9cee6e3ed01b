"""The local stack's replica settings: one upstream server per replica, from an included file, and none by default."""

import pytest

from launcher.stack import NGINX_DIR, Stack, StackError, render


def upstream(config, name):
    """The body of `upstream <name> { ... }` in a rendered config."""
    return config.split(f"upstream {name} {{")[1].split("\n}")[0]


def test_one_replica_is_the_config_as_before(tmp_path):
    stack = Stack(tmp_path, environ={})
    assert stack.replicas("validator") == ["validator"]
    assert stack.includes(stack.nginx_variables()) == {}


def test_each_replica_gets_a_socket_an_upstream_server_and_its_own_metrics(tmp_path):
    stack = Stack(tmp_path, environ={"JWTGATE_VALIDATOR_REPLICAS": "3", "JWTGATE_AUTH_REPLICAS": "2"})
    assert stack.replicas("validator") == ["validator", "validator-2", "validator-3"]
    assert stack.replicas("backend") == ["backend"]
    config = render((NGINX_DIR / "templates" / "gateway.conf.template").read_text(), stack.nginx_variables())
    files = stack.includes(stack.nginx_variables())
    assert sorted(files) == [f"jwtgate-upstreams.d/{name}.conf"
                             for name in ("auth_api-2", "validator-2", "validator-3")]
    for service, names in (("validator", ("validator-2", "validator-3")), ("auth_api", ("auth_api-2",))):
        block = upstream(config, f"jwtgate_{service}")
        assert f"server unix:{stack.socket(service)} max_fails=2 fail_timeout=5s;" in block
        assert f"include jwtgate-upstreams.d/{service}-*.conf;" in block
        for name in names:
            assert files[f"jwtgate-upstreams.d/{name}.conf"].splitlines()[-1] == \
                f"server unix:{stack.socket(name)} max_fails=2 fail_timeout=5s;"
    env = stack.replica_env("auth_api-2")
    assert env["AUTH_BIND"] == f"unix:{stack.socket('auth_api-2')}"
    assert env["PROMETHEUS_MULTIPROC_DIR"].endswith("/metrics/auth_api-2")
    first = stack.replica_env("validator")
    assert first["VALIDATOR_BIND"] == f"unix:{stack.socket('validator')}"
    assert "PROMETHEUS_MULTIPROC_DIR" not in first


@pytest.mark.parametrize("value", ["0", "17", "two"])
def test_bad_replica_counts_stop_start_up(tmp_path, value):
    with pytest.raises(StackError, match="JWTGATE_VALIDATOR_REPLICAS"):
        Stack(tmp_path, environ={"JWTGATE_VALIDATOR_REPLICAS": value, "VALIDATOR_JWKS_URL": "http://x/j"}
              ).check_settings()
