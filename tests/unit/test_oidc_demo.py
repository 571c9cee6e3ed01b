"""`make demo`'s OpenID provider: loopback only, fresh private keys, and a providers file the validator reads."""

import pytest

from launcher.oidc_demo import AUDIENCE, OidcDemo, loopback_problem
from launcher.stack import Stack, StackError
from validator.config import Settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("listen", ["127.0.0.1:9090", "127.0.0.2:1", "[::1]:9090"])
def test_a_loopback_address_with_a_port_is_accepted(listen):
    assert loopback_problem(listen) is None


@pytest.mark.parametrize("listen", ["0.0.0.0:9090", "192.0.2.1:9090", "localhost:9090", "127.0.0.1", "127.0.0.1:0",
                                    "127.0.0.1:70000", "[::]:9090"])
def test_any_other_address_is_refused(listen):
    assert "loopback" in loopback_problem(listen)


def test_the_stack_refuses_to_start_the_demo_beyond_loopback_naming_the_setting(tmp_path):
    stack = Stack(tmp_path, environ={}, oidc_demo=OidcDemo(tmp_path / "oidc-demo", "0.0.0.0:9090"))
    with pytest.raises(StackError, match="JWTGATE_OIDC_DEMO_LISTEN"):
        stack.check_settings()


def test_prepare_writes_private_keys_and_a_providers_file_naming_both_providers(tmp_path):
    demo = OidcDemo(tmp_path / "oidc-demo", "127.0.0.1:9090")
    demo.prepare(str(tmp_path / "auth_api.sock"), "http://127.0.0.1:8080")
    assert demo.jwks_path.stat().st_mode & 0o777 == 0o600
    settings = Settings.from_env({"VALIDATOR_PROVIDERS_FILE": str(demo.providers_path)})
    providers = {provider.name: provider for provider in settings.providers}
    assert sorted(providers) == ["jwtgate", "oidc-demo"]
    assert providers["oidc-demo"].issuer == "http://127.0.0.1:9090"
    # Our auth API by its RFC 8414 metadata, like any provider.
    assert providers["jwtgate"].issuer == "http://127.0.0.1:8080" and providers["jwtgate"].discovery
    assert AUDIENCE in providers["oidc-demo"].audiences
    assert "--host" in demo.command() and demo.client_secret not in " ".join(demo.command())
