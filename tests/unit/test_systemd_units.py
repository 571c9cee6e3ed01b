"""examples/systemd/: the sandboxing each unit promises, and sockets and paths that agree between the files."""

import pytest

from tests.systemd_support import ROOT, UNITS, directives, env_file, service_environment, ENV_FILES

SANDBOX = {
    "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "SystemCallFilter": "@system-service",
    "SystemCallArchitectures": "native", "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
    "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "ProtectClock": "yes", "UMask": "0077",
    # The socket's directory: its owner and the group Nginx's user joins, nobody else.
    "Group": "jwtgate", "RuntimeDirectoryMode": "0750",
}
BIND = {"validator": "VALIDATOR_BIND", "auth_api": "AUTH_BIND"}


@pytest.mark.parametrize("service", sorted(UNITS))
def test_each_unit_runs_sandboxed_as_a_dynamic_user_never_root(service):
    options = directives(UNITS[service])["Service"]
    assert {key: options.get(key) for key in SANDBOX} == {key: [value] for key, value in SANDBOX.items()}
    assert "User" not in options, "DynamicUser= allocates the user; a User= line could name root"
    assert options["ExecStart"][0].startswith("/opt/jwtgate/bin/")


@pytest.mark.parametrize("service", sorted(UNITS))
def test_each_service_writes_only_to_its_runtime_and_state_directories(service):
    options = directives(UNITS[service])["Service"]
    environ = service_environment(UNITS[service])
    (runtime,), (state,) = options["RuntimeDirectory"], options["StateDirectory"]
    assert runtime.startswith("jwtgate/")
    bind = environ[BIND[service]]
    assert bind.startswith(f"unix:/run/{runtime}/") and bind.endswith(".sock")
    assert environ["JWTGATE_DATA_DIR"] == f"/var/lib/{state}"
    assert options["StateDirectoryMode"] == ["0700"]


def test_the_auth_api_keeps_its_keys_and_databases_where_the_validator_cannot_read():
    validator = directives(UNITS["validator"])["Service"]
    auth_api = directives(UNITS["auth_api"])["Service"]
    assert auth_api["StateDirectory"] == ["jwtgate"]
    assert validator["StateDirectory"] != auth_api["StateDirectory"]
    assert validator["RuntimeDirectory"] != auth_api["RuntimeDirectory"], "stopping one would remove both sockets"


def test_the_validator_reads_the_jwks_and_revocations_where_the_auth_api_puts_them():
    validator, auth_api = service_environment(UNITS["validator"]), service_environment(UNITS["auth_api"])
    assert f"unix:{validator['VALIDATOR_JWKS_SOCKET']}" == auth_api["AUTH_BIND"]
    assert validator["VALIDATOR_REVOCATION_DB"] == auth_api["AUTH_REVOCATION_DB"]
    assert validator["VALIDATOR_ISSUER"] == auth_api["AUTH_ISSUER"]
    assert validator["VALIDATOR_AUDIENCE"] == auth_api["AUTH_AUDIENCE"]


def test_every_example_setting_is_documented():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for path in ENV_FILES.values():
        for name in env_file(path):
            assert f"`{name}`" in documented, f"{path.name}: {name}"


@pytest.mark.parametrize("service", sorted(UNITS))
def test_the_install_page_points_nginx_at_each_units_socket(service):
    socket_path = service_environment(UNITS[service])[BIND[service]]
    assert f"server {socket_path};" in (ROOT / "docs" / "install-vm.md").read_text()
