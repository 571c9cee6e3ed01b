"""auth_api settings from the environment."""

import os

import pytest

from auth_api.config import Settings
from auth_api.database import PostgresDatabase
from jwtgate.settings import ConfigError


def test_defaults(tmp_path):
    settings = Settings.from_env({"JWTGATE_DATA_DIR": str(tmp_path)})
    assert settings == Settings(data_dir=str(tmp_path))
    assert (settings.issuer, settings.audience) == ("jwtgate", "jwtgate-api")
    assert settings.access_token_ttl_seconds == 900
    assert settings.demo_login is False and settings.demo_user == "demo"
    assert settings.hs256_secret is None and settings.algorithm == "RS256"
    assert settings.max_body_bytes == 4096 and settings.log_level == "info"


def test_data_dir_defaults_to_var_made_absolute():
    assert Settings.from_env({}).data_dir == os.path.abspath("var")


def test_every_setting_is_read(tmp_path):
    settings = Settings.from_env(
        {
            "JWTGATE_DATA_DIR": str(tmp_path),
            "AUTH_ISSUER": "https://auth.example",
            "AUTH_AUDIENCE": "orders",
            "AUTH_ACCESS_TOKEN_TTL_SECONDS": "60",
            "AUTH_DEMO_LOGIN": "1",
            "AUTH_DEMO_USER": "guest",
            "AUTH_HS256_SECRET": "s" * 32,
            "AUTH_MAX_BODY_BYTES": "1024",
            "AUTH_LOG_LEVEL": "debug",
            "AUTH_PUBLIC_ORIGINS": "https://api.example http://127.0.0.1:8080",
        }
    )
    assert settings == Settings(
        data_dir=str(tmp_path),
        issuer="https://auth.example",
        audience="orders",
        access_token_ttl_seconds=60,
        demo_login=True,
        demo_user="guest",
        hs256_secret=b"s" * 32,
        max_body_bytes=1024,
        log_level="debug",
        public_origins=frozenset({"https://api.example", "http://127.0.0.1:8080"}),
    )
    assert settings.algorithm == "HS256"


def test_secret_from_file(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"f" * 40 + b"\n")
    settings = Settings.from_env({"AUTH_HS256_SECRET_FILE": str(path)})
    assert settings.hs256_secret == b"f" * 40


def test_secret_is_not_in_repr():
    assert "topsecret" not in repr(Settings(data_dir="/x", hs256_secret=b"topsecret" * 4))


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {
                "AUTH_ISSUER": " ",
                "AUTH_ACCESS_TOKEN_TTL_SECONDS": "86401",
                "AUTH_DEMO_LOGIN": "maybe",
                "AUTH_DEMO_USER": "no spaces",
                "AUTH_HS256_SECRET": "tiny-secret-value",
                "AUTH_MAX_BODY_BYTES": "lots",
                "AUTH_LOG_LEVEL": "verbose",
                "AUTH_DPOP_NONCE_SECONDS": "9",
                "AUTH_DPOP_NONCE_SECRET": "short-nonce-secret",
                "AUTH_PUBLIC_ORIGINS": "https://api.example/",
            }
        )
    names = [name for name, _ in raised.value.problems]
    assert sorted(names) == sorted(
        [
            "AUTH_ISSUER",
            "AUTH_ACCESS_TOKEN_TTL_SECONDS",
            "AUTH_DEMO_LOGIN",
            "AUTH_DEMO_USER",
            "AUTH_HS256_SECRET",
            "AUTH_MAX_BODY_BYTES",
            "AUTH_LOG_LEVEL",
            "AUTH_DPOP_NONCE_SECONDS",
            "AUTH_DPOP_NONCE_SECRET",
            "AUTH_PUBLIC_ORIGINS",
        ]
    )
    assert str(raised.value).startswith("invalid configuration:")
    assert "tiny-secret-value" not in str(raised.value) and "short-nonce-secret" not in str(raised.value)


def test_ttl_below_minimum():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AUTH_ACCESS_TOKEN_TTL_SECONDS": "59"})
    assert raised.value.problems == [("AUTH_ACCESS_TOKEN_TTL_SECONDS", "must be at least 60")]


def test_secret_and_secret_file_together(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"f" * 40)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AUTH_HS256_SECRET": "s" * 32, "AUTH_HS256_SECRET_FILE": str(path)})
    assert [name for name, _ in raised.value.problems] == ["AUTH_HS256_SECRET"]


def test_unreadable_secret_file(tmp_path):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AUTH_HS256_SECRET_FILE": str(tmp_path / "missing")})
    assert [name for name, _ in raised.value.problems] == ["AUTH_HS256_SECRET_FILE"]


def test_the_dpop_replay_cache_is_sqlite_or_a_redis_url():
    assert Settings.from_env({}).dpop_replay_store == ""
    assert Settings.from_env({"AUTH_DPOP_REPLAY_DB": "redis://redis:6379/0"}).dpop_replay_store == "redis://redis:6379/0"
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AUTH_DPOP_REPLAY_DB": "/var/lib/replay.db"})
    assert [name for name, _ in raised.value.problems] == ["AUTH_DPOP_REPLAY_DB"]


def test_the_database_password_comes_from_a_file_and_never_shows(tmp_path):
    password = tmp_path / "postgres-password"
    password.write_text("from-a-secret\n")
    settings = Settings.from_env({"AUTH_DATABASE_URL": "postgresql://jwtgate@db/jwtgate",
                                  "AUTH_DATABASE_PASSWORD_FILE": str(password)})
    assert settings.database_password == b"from-a-secret"
    assert "from-a-secret" not in repr(settings)


def test_a_database_password_without_a_database_url_stops_start_up():
    with pytest.raises(ConfigError, match="AUTH_DATABASE_PASSWORD: needs AUTH_DATABASE_URL"):
        Settings.from_env({"AUTH_DATABASE_PASSWORD": "x"})


def test_the_database_password_overrides_the_urls_for_psycopg():
    assert PostgresDatabase.connect_kwargs(b"from-a-secret") == {"connect_timeout": 5, "password": "from-a-secret"}
    assert PostgresDatabase.connect_kwargs(None) == {"connect_timeout": 5}
