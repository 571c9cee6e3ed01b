"""`python -m auth_api`, gunicorn.conf.py and get_app, run as the operator and gunicorn run them."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from falcon import testing
from jose import jwk as jose_jwk
from jose import jwt as jose_jwt

from auth_api import keys
from auth_api.app import create_app
from auth_api.config import Settings
from auth_api.keys import KeyRing
from auth_api.store import UserStore
from auth_api.tokens import mint_access_token
from jwtgate.logs import fingerprint
from jwtgate.revocation import SqliteRevocationStore


ROOT = Path(__file__).resolve().parents[2]


def run(data_dir, *args, stdin=None, **environ):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "JWTGATE_DATA_DIR": str(data_dir),
        **environ,
    }
    return subprocess.run(
        [sys.executable, *args], input=stdin, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def cli(data_dir, *args, stdin=None, **environ):
    return run(data_dir, "-m", "auth_api", *args, stdin=stdin, **environ)


def login(data_dir, username, password):
    settings = Settings(data_dir=str(data_dir))
    app = create_app(settings, store=UserStore.open(settings), keyring=KeyRing.open(settings),
                     revocations=SqliteRevocationStore(settings.revocation_db), clock=lambda: 1e9)
    return testing.TestClient(app).simulate_post(
        "/api/auth/login", json={"username": username, "password": password}
    )


def test_init_is_idempotent(tmp_path):
    first = cli(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    (key_file,) = keys.key_files(tmp_path / "keys")
    second = cli(tmp_path, "init")
    assert second.returncode == 0, second.stderr
    assert keys.key_files(tmp_path / "keys") == [key_file]
    assert first.stdout == second.stdout
    assert (tmp_path / "auth.db").exists() and (tmp_path / "run").is_dir()
    assert "PRIVATE KEY" not in first.stdout + first.stderr


def test_init_in_hs256_mode_makes_no_key_file(tmp_path):
    result = cli(tmp_path, "init", AUTH_HS256_SECRET="s" * 32)
    assert result.returncode == 0, result.stderr
    assert "signing: HS256" in result.stdout
    assert "s" * 32 not in result.stdout + result.stderr
    assert not (tmp_path / "keys").exists()


def test_users_add_generates_a_password_that_logs_in(tmp_path):
    result = cli(tmp_path, "users", "add", "alice", "--role", "admin", "--role", "user", "--scope", "orders:read")
    assert result.returncode == 0, result.stderr
    (password_line,) = [line for line in result.stdout.splitlines() if line.startswith("password: ")]
    password = password_line.removeprefix("password: ")
    assert len(password) >= 12
    response = login(tmp_path, "alice", password)
    assert response.status_code == 200
    user = UserStore.open(Settings(data_dir=str(tmp_path))).get_user("alice")
    assert (user.roles, user.scope) == (("admin", "user"), "orders:read")


def test_users_add_password_stdin(tmp_path):
    result = cli(tmp_path, "users", "add", "bob", "--password-stdin", stdin="correct horse battery\n")
    assert result.returncode == 0, result.stderr
    assert "password" not in result.stdout and "correct horse" not in result.stdout
    assert login(tmp_path, "bob", "correct horse battery").status_code == 200


def test_users_add_refuses_a_short_password(tmp_path):
    result = cli(tmp_path, "users", "add", "bob", "--password-stdin", stdin="short\n")
    assert result.returncode == 1
    assert "at least 12" in result.stderr
    assert "Traceback" not in result.stderr
    assert UserStore.open(Settings(data_dir=str(tmp_path))).get_user("bob") is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["users", "add", "bad name"], "invalid username"),
        (["users", "add", "carol", "--role", "a,b"], "invalid role"),
        (["users", "add", "carol", "--scope", "a b"], "invalid scope"),
        (["users", "disable", "nobody"], "no user"),
    ],
)
def test_user_errors_exit_1_with_a_message(tmp_path, args, message):
    result = cli(tmp_path, *args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "password:" not in result.stdout


def test_users_add_twice_fails_and_keeps_the_first_password(tmp_path):
    first = cli(tmp_path, "users", "add", "alice")
    password = first.stdout.split("password: ", 1)[1].strip()
    second = cli(tmp_path, "users", "add", "alice")
    assert second.returncode == 1 and "already exists" in second.stderr
    assert login(tmp_path, "alice", password).status_code == 200


def test_users_list_and_disable(tmp_path):
    cli(tmp_path, "users", "add", "alice", "--role", "admin", "--scope", "orders:read", "--scope", "orders:write")
    cli(tmp_path, "users", "add", "bob")
    disabled = cli(tmp_path, "users", "disable", "bob")
    assert disabled.returncode == 0, disabled.stderr
    listed = cli(tmp_path, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "username\troles\tscope\tdisabled",
        "alice\tadmin\torders:read orders:write\tno",
        "bob\t\t\tyes",
    ]
    assert "$argon2" not in listed.stdout


def test_users_demo_prints_two_users_and_their_passwords_log_in(tmp_path):
    result = cli(tmp_path, "users", "demo", AUTH_DEMO_USER="guest")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0] == "username: guest"
    assert lines[1].startswith("password: ")
    assert lines[2] == "username: guest-admin"
    assert login(tmp_path, "guest-admin", lines[3].removeprefix("password: ")).status_code == 200
    admin = UserStore.open(Settings(data_dir=str(tmp_path))).get_user("guest-admin")
    assert (admin.roles, admin.scope) == (("admin", "user"), "orders:read orders:write")
    password = lines[1].removeprefix("password: ")
    response = login(tmp_path, "guest", password)
    assert response.status_code == 200
    again = cli(tmp_path, "users", "demo", AUTH_DEMO_USER="guest")
    new_password = again.stdout.splitlines()[1].removeprefix("password: ")
    assert new_password != password
    assert login(tmp_path, "guest", password).status_code == 401
    assert login(tmp_path, "guest", new_password).status_code == 200
    user = UserStore.open(Settings(data_dir=str(tmp_path))).get_user("guest")
    assert (user.roles, user.scope) == (("user",), "orders:read")


def test_bad_configuration_exits_2_naming_every_setting(tmp_path):
    result = cli(tmp_path, "users", "list", AUTH_ACCESS_TOKEN_TTL_SECONDS="0", AUTH_HS256_SECRET="tiny-secret")
    assert result.returncode == 2
    assert result.stderr.startswith("invalid configuration:")
    assert "AUTH_ACCESS_TOKEN_TTL_SECONDS" in result.stderr and "AUTH_HS256_SECRET" in result.stderr
    assert "Traceback" not in result.stderr and "tiny-secret" not in result.stderr
    assert not (tmp_path / "auth.db").exists()


def test_gunicorn_check_config(tmp_path):
    result = run(tmp_path, "-m", "gunicorn", "--check-config", "-c", "auth_api/gunicorn.conf.py")
    assert result.returncode == 0, result.stderr


def test_gunicorn_config_rejects_bad_settings(tmp_path):
    result = run(
        tmp_path, "-m", "gunicorn", "--check-config", "-c", "auth_api/gunicorn.conf.py", AUTH_WORKERS="0"
    )
    assert result.returncode != 0
    assert "AUTH_WORKERS" in result.stderr


def test_gunicorn_config_values(tmp_path):
    code = (
        "import runpy, json; c = runpy.run_path('auth_api/gunicorn.conf.py');"
        "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'worker_class', 'threads', 'wsgi_app', 'accesslog')}))"
    )
    defaults = json.loads(run(tmp_path, "-c", code).stdout)
    assert defaults == {
        "bind": f"unix:{tmp_path}/run/auth_api.sock",
        "workers": 2,
        "worker_class": "gthread",
        "threads": 4,
        "wsgi_app": "auth_api.app:get_app()",
        "accesslog": None,
    }
    custom = json.loads(run(tmp_path, "-c", code, AUTH_BIND="127.0.0.1:9000", AUTH_WORKERS="3").stdout)
    assert (custom["bind"], custom["workers"]) == ("127.0.0.1:9000", 3)


def _log_lines(stderr):
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_get_app_warns_loudly_when_demo_login_is_on(tmp_path):
    result = run(tmp_path, "-c", "from auth_api.app import get_app; get_app()", AUTH_DEMO_LOGIN="1")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in _log_lines(result.stderr) if line["level"] == "warning"]
    assert any("DEMO LOGIN IS ON" in line["event"] for line in warnings)
    assert any("demo user missing" in line["event"] for line in warnings)


def test_get_app_is_quiet_about_demo_login_when_off(tmp_path):
    result = run(tmp_path, "-c", "from auth_api.app import get_app; get_app()",
                 AUTH_PUBLIC_ORIGINS="https://api.example", AUTH_ISSUER="https://api.example")
    assert result.returncode == 0, result.stderr
    lines = _log_lines(result.stderr)
    assert [line["event"] for line in lines] == ["signing key generated", "auth_api ready"]


def test_get_app_says_dpop_is_refused_without_public_origins(tmp_path):
    result = run(tmp_path, "-c", "from auth_api.app import get_app; get_app()")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in _log_lines(result.stderr) if line["level"] == "warning"]
    assert line["event"].startswith("AUTH_PUBLIC_ORIGINS is not set: every DPoP proof")


def test_get_app_logs_bad_settings_and_fails(tmp_path):
    result = run(tmp_path, "-c", "from auth_api.app import get_app; get_app()", AUTH_LOG_LEVEL="loud")
    assert result.returncode != 0
    (line,) = [line for line in _log_lines(result.stderr) if line["level"] == "critical"]
    assert line["setting"] == "AUTH_LOG_LEVEL"


def _mint(data_dir, *args, **environ):
    return cli(data_dir, "tokens", "mint", *args, **environ)


def _minted(data_dir, *args, **environ):
    result = _mint(data_dir, *args, **environ)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _verified_claims(data_dir, token):
    (public,) = KeyRing.load(keys.keys_dir(str(data_dir))).jwks()["keys"]
    return jose_jwt.decode(
        token, jose_jwk.construct(public, "RS256"), algorithms=["RS256"], audience="jwtgate-api", issuer="jwtgate",
        options={"verify_exp": False},
    )


def test_tokens_mint_prints_only_a_token_signed_with_the_stack_key(tmp_path):
    cli(tmp_path, "init")
    cli(tmp_path, "users", "add", "alice", "--role", "admin", "--scope", "orders:read", "--scope", "orders:write")
    before = int(time.time())
    result = _mint(tmp_path, "alice")
    assert result.returncode == 0, result.stderr
    (token,) = result.stdout.splitlines()
    assert token.count(".") == 2
    claims = _verified_claims(tmp_path, token)
    assert jose_jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert (claims["sub"], claims["roles"], claims["scope"]) == ("alice", ["admin"], "orders:read orders:write")
    assert before <= claims["iat"] <= claims["exp"] - 900 <= int(time.time())
    # Only the fingerprint is logged; the token itself goes to stdout alone.
    assert token not in result.stderr
    (line,) = [line for line in _log_lines(result.stderr) if line["event"] == "token minted"]
    assert (line["user"], line["token_fp"]) == ("alice", fingerprint(token))


def test_tokens_mint_with_a_negative_lifetime_is_already_expired(tmp_path):
    cli(tmp_path, "init")
    cli(tmp_path, "users", "demo")
    token = _minted(tmp_path, "demo", "--expires-in", "-600")
    claims = _verified_claims(tmp_path, token)
    now = int(time.time())
    assert now - 610 <= claims["exp"] <= now - 600
    # Issued one normal lifetime before it expired: exp > iat, as for any token the server issues.
    assert claims["exp"] - claims["iat"] == 900
    (public,) = KeyRing.load(keys.keys_dir(str(tmp_path))).jwks()["keys"]
    with pytest.raises(jose_jwt.ExpiredSignatureError):
        jose_jwt.decode(token, jose_jwk.construct(public, "RS256"), algorithms=["RS256"], audience="jwtgate-api",
                        issuer="jwtgate")


def test_tokens_mint_lifetime_follows_the_settings_and_the_option(tmp_path):
    cli(tmp_path, "init")
    cli(tmp_path, "users", "demo")
    configured = _verified_claims(tmp_path, _minted(tmp_path, "demo", AUTH_ACCESS_TOKEN_TTL_SECONDS="120"))
    assert configured["exp"] - configured["iat"] == 120
    short = _verified_claims(tmp_path, _minted(tmp_path, "demo", "--expires-in", "60"))
    assert short["exp"] - short["iat"] == 60
    now_expired = _verified_claims(tmp_path, _minted(tmp_path, "demo", "--expires-in=0"))
    assert now_expired["exp"] - now_expired["iat"] == 900


def test_mint_access_token_keeps_its_signature_and_takes_expires_in(tmp_path):
    settings = Settings(data_dir=str(tmp_path), access_token_ttl_seconds=300)
    keyring = KeyRing.open(settings)
    _, default = mint_access_token(keyring, settings, subject="a", roles=[], scope="", now=lambda: 1_000_000.5)
    assert (default["iat"], default["exp"]) == (1_000_000, 1_000_300)
    _, expired = mint_access_token(
        keyring, settings, subject="a", roles=[], scope="", now=lambda: 1_000_000.5, expires_in=-60
    )
    assert (expired["iat"], expired["exp"]) == (999_640, 999_940)


@pytest.mark.parametrize(
    "setup, args, code, message",
    [
        ([], ["demo"], 1, "no signing key"),
        ([["init"]], ["nobody"], 1, "no user 'nobody'"),
        ([["init"], ["users", "add", "bob"], ["users", "disable", "bob"]], ["bob"], 1, "is disabled"),
        ([["init"], ["users", "demo"]], ["demo", "--expires-in", "soon"], 2, "whole number of seconds"),
        ([["init"], ["users", "demo"]], ["demo", "--expires-in", "86401"], 2, "between -86400 and 86400"),
    ],
)
def test_tokens_mint_errors_print_no_token(tmp_path, setup, args, code, message):
    for command in setup:
        assert cli(tmp_path, *command).returncode == 0
    result = _mint(tmp_path, *args)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_tokens_mint_never_generates_a_key(tmp_path):
    cli(tmp_path, "users", "demo")
    assert _mint(tmp_path, "demo").returncode == 1
    assert keys.key_files(tmp_path / "keys") == []


def test_tokens_mint_in_hs256_mode(tmp_path):
    secret = "h" * 32
    cli(tmp_path, "users", "demo", AUTH_HS256_SECRET=secret)
    result = _mint(tmp_path, "demo", AUTH_HS256_SECRET=secret)
    assert result.returncode == 0, result.stderr
    assert jose_jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"], audience="jwtgate-api")["sub"] == "demo"
    assert secret not in result.stderr
