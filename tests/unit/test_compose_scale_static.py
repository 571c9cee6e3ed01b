"""docker-compose.scale.yml, checked without Docker like the default file (tests/e2e/test_compose_static.py)."""

from pathlib import Path

import pytest

from auth_api.config import Settings as AuthSettings
from tests.compose_support import assert_locked_down, check_compose_schema, load_yaml
from validator.config import Settings as ValidatorSettings


ROOT = Path(__file__).resolve().parents[2]
SCALE_FILE = ROOT / "docker-compose.scale.yml"


@pytest.fixture(scope="module")
def merged():
    """The two files as `docker compose -f docker-compose.yml -f docker-compose.scale.yml` merges them
    (environment mappings merge per key, the rest per service key)."""
    base, scale = load_yaml(ROOT / "docker-compose.yml"), load_yaml(SCALE_FILE)
    services = {name: dict(service) for name, service in base["services"].items()}
    for name, override in scale["services"].items():
        service = services.setdefault(name, {})
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(service.get(key), dict):
                service[key] = {**service[key], **value}
            else:
                service[key] = value
    return {"services": services, "volumes": {**base["volumes"], **scale["volumes"]},
            "secrets": scale["secrets"]}


def test_scale_file_validates_against_the_compose_specification():
    result = check_compose_schema(SCALE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_replicas_and_shared_state(merged):
    services = merged["services"]
    assert services["validator"]["deploy"]["replicas"] >= 2
    assert services["auth-api"]["deploy"]["replicas"] >= 2
    for name in ("redis", "postgres"):
        assert services[name]["networks"] == ["internal"]
        assert "ports" not in services[name]
        assert "healthcheck" in services[name]
    assert services["auth-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert {"redis-data", "postgres-data", "auth-data"} <= set(merged["volumes"])


def test_every_merged_service_is_locked_down(merged):
    assert_locked_down(merged["services"])


def test_postgres_proves_a_password_from_a_secret(merged):
    postgres = merged["services"]["postgres"]
    environment = postgres["environment"]
    assert "trust" not in str(environment)
    assert environment["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "POSTGRES_PASSWORD" not in environment
    (secret,) = merged["secrets"]
    assert merged["secrets"][secret] == {"file": "./postgres-password.txt"}
    assert environment["POSTGRES_PASSWORD_FILE"] == f"/run/secrets/{secret}"
    for name in ("postgres", "auth-init", "auth-api"):
        assert merged["services"][name]["secrets"] == [secret], name
    assert {name for name, service in merged["services"].items() if "secrets" in service} == \
        {"postgres", "auth-init", "auth-api"}
    assert "/postgres-password.txt" in (ROOT / ".gitignore").read_text().splitlines()


def test_merged_environments_are_valid_settings_on_the_shared_services(merged, tmp_path):
    services = merged["services"]
    environment = {key: str(value) for key, value in services["auth-api"]["environment"].items()}
    # The secret as Compose mounts it: the auth API reads the same file PostgreSQL was initialised with.
    password = tmp_path / "postgres-password"
    password.write_text("s3cret-from-the-file\n")
    assert environment["AUTH_DATABASE_PASSWORD_FILE"] == services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]
    auth = AuthSettings.from_env({**environment, "AUTH_DATABASE_PASSWORD_FILE": str(password)})
    assert auth.database_password == b"s3cret-from-the-file"
    assert auth.database_url.startswith("postgresql://") and "@postgres:" in auth.database_url
    assert ":" not in auth.database_url.split("@")[0].removeprefix("postgresql://")
    assert auth.revocation_db == auth.lockout_store == auth.dpop_replay_store == "redis://redis:6379/0"
    init = services["auth-init"]["environment"]
    assert init["AUTH_DATABASE_URL"] == auth.database_url
    validator = ValidatorSettings.from_env({key: str(value)
                                            for key, value in services["validator"]["environment"].items()})
    assert validator.revocation_db == auth.revocation_db
