"""The Nginx micro-cache: its validator side (Cache-Control from exp and the cap), its snippet and its switch."""

import re
from pathlib import Path

import falcon.testing
import pytest

from jwtgate.settings import ConfigError
from jwtgate.keys import StaticKeys
from launcher.stack import NGINX_DIR, Stack, StackError
from tests.fakes import FakeClock
from tests.minting import claims, hs256
from validator.app import create_app
from validator.config import Settings
from validator.resources import micro_cache_control


SECRET = b"k" * 40


@pytest.mark.parametrize(("exp_in", "cap", "expected"), [
    (900, 5, "max-age=4"),        # the cap less the second Nginx keeps an entry past its max-age
    (6, 5, "max-age=4"),
    (900, 1, "no-store"),         # a cap of 1 s leaves nothing to cache
    (5.5, 5, "max-age=4"),        # never into the second in which the token expires
    (3.2, 5, "max-age=2"),
    (2, 5, "max-age=1"),
    (1.9, 5, "no-store"),         # nothing left to cache
    (0, 5, "no-store"),
    (-30, 5, "no-store"),         # expired, but still inside the validator's leeway
    (900, 0, "no-store"),
])
def test_max_age_is_capped_and_ends_before_exp(exp_in, cap, expected):
    now = 1_800_000_000.25
    assert micro_cache_control(now + exp_in, now, cap) == expected


def _hs256(now, **overrides):
    return hs256(SECRET, claims(now, **overrides))


def _client(clock, **settings):
    app = create_app(Settings(hs256_secret=SECRET, provider_preset="jwtgate", **settings), keys=StaticKeys(SECRET, ""),
                     clock=clock)
    return falcon.testing.TestClient(app)


def test_allowed_verdict_carries_max_age_from_the_fake_clock():
    clock = FakeClock()
    client = _client(clock, verdict_max_age_seconds=5, leeway_seconds=0)
    token = _hs256(clock(), exp=int(clock()) + 8)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.simulate_get("/verify", headers=headers).headers["cache-control"] == "max-age=4"
    clock.tick(3.5)     # 4.5 s left: the answer may be kept 3 s
    assert client.simulate_get("/verify", headers=headers).headers["cache-control"] == "max-age=3"
    clock.tick(3)       # 1.5 s left: not worth storing
    result = client.simulate_get("/verify", headers=headers)
    assert result.status_code == 200
    assert result.headers["cache-control"] == "no-store"
    clock.tick(2)
    result = client.simulate_get("/verify", headers=headers)
    assert result.status_code == 401
    assert result.headers["cache-control"] == "no-store"


def test_refusals_and_the_default_say_no_store():
    clock = FakeClock()
    token = _hs256(clock())
    default = _client(clock)
    assert default.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"}).headers[
        "cache-control"] == "no-store"
    capped = _client(clock, verdict_max_age_seconds=5)
    for value in (None, "Bearer nope", f"Bearer {token}x"):
        result = capped.simulate_get("/verify", headers={"Authorization": value} if value else {})
        assert result.status_code == 401
        assert result.headers["cache-control"] == "no-store"


def test_setting_defaults_to_off_and_is_bounded():
    base = {"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks"}
    assert Settings.from_env(base).verdict_max_age_seconds == 0
    assert Settings.from_env({**base, "VALIDATOR_VERDICT_MAX_AGE_SECONDS": "3"}).verdict_max_age_seconds == 3
    with pytest.raises(ConfigError, match="VALIDATOR_VERDICT_MAX_AGE_SECONDS"):
        Settings.from_env({**base, "VALIDATOR_VERDICT_MAX_AGE_SECONDS": "60"})


def test_the_verify_location_alone_includes_the_optional_files_and_make_run_puts_the_cache_there(tmp_path):
    server = (NGINX_DIR / "snippets" / "jwtgate-server.conf").read_text()
    verify = server.split("location = /_jwtgate/verify {")[1].split("\n}")[0]
    assert "    include jwtgate-verify.d/*.conf;" in verify
    assert server.count("include jwtgate-verify.d/") == 1
    stack = Stack(tmp_path, environ={"JWTGATE_MICRO_CACHE": "1"})
    files = stack.includes(stack.nginx_variables())
    assert files["jwtgate-verify.d/micro-cache.conf"].splitlines()[-1] == \
        f"include {NGINX_DIR / 'snippets' / 'jwtgate-micro-cache.conf'};"
    assert f"proxy_cache_path {stack.worker_dir}/micro-cache " in files["conf.d/micro-cache.conf"]


def test_cache_snippet_keys_on_authorization_and_requirements_and_never_stores_refusals():
    text = (NGINX_DIR / "snippets" / "jwtgate-micro-cache.conf").read_text()
    key = next(line for line in text.splitlines() if line.startswith("proxy_cache_key "))
    for variable in ("$http_authorization", "$jwtgate_require_scopes", "$jwtgate_require_roles",
                     "$jwtgate_require_claims", "$jwtgate_providers"):
        assert variable in key
    assert re.search(r"^proxy_no_cache \$upstream_http_x_auth_error[ ;]", text, re.M)
    # Only the validator's max-age decides: no default lifetime for answers without one.
    assert not any(line.startswith("proxy_cache_valid") for line in text.splitlines())
    assert "proxy_cache_use_stale off;" in text


def test_a_server_can_skip_the_micro_cache_and_make_bench_measures_without_it_so():
    text = (NGINX_DIR / "snippets" / "jwtgate-micro-cache.conf").read_text()
    # Skipped: never read from the cache, never stored in it.
    assert "proxy_cache_bypass $jwtgate_micro_cache_skip;" in text.splitlines()
    assert "proxy_no_cache $upstream_http_x_auth_error $jwtgate_micro_cache_skip;" in text.splitlines()
    bench = (NGINX_DIR.parent / "bench" / "bench.conf.template").read_text().split("\nserver {")
    plain, cached = bench[1], bench[2]
    assert "    set $jwtgate_micro_cache_skip 1;" in plain and "jwtgate_micro_cache_skip" not in cached


def test_stack_switch_is_off_by_default():
    off = Stack(Path("/nonexistent"), environ={})
    assert not off.micro_cache and off.includes(off.nginx_variables()) == {}
    assert "VALIDATOR_VERDICT_MAX_AGE_SECONDS" not in off.service_env()
    stack = Stack(Path("/nonexistent"), environ={"JWTGATE_MICRO_CACHE": "1"})
    assert stack.micro_cache
    assert stack.service_env()["VALIDATOR_VERDICT_MAX_AGE_SECONDS"] == "5"


@pytest.mark.parametrize(("environ", "on"), [
    ({"JWTGATE_VERDICT_CACHE": "1"}, True),
    ({"JWTGATE_VERDICT_CACHE": "0"}, False),
    ({"JWTGATE_VERDICT_CACHE": "1", "JWTGATE_MICRO_CACHE": "0"}, False),
])
def test_the_old_setting_name_still_works_for_one_release_and_says_so(tmp_path, capsys, environ, on):
    stack = Stack(tmp_path, environ={**environ, "VALIDATOR_HS256_SECRET": "s" * 40})
    assert stack.micro_cache is on
    stack.check_settings()
    assert "JWTGATE_VERDICT_CACHE is now JWTGATE_MICRO_CACHE" in capsys.readouterr().err


def test_a_bad_old_setting_value_names_the_old_setting(tmp_path):
    with pytest.raises(StackError, match="JWTGATE_VERDICT_CACHE"):
        Stack(tmp_path, environ={"JWTGATE_VERDICT_CACHE": "2", "VALIDATOR_HS256_SECRET": "s" * 40}).check_settings()


def test_only_a_bearer_header_verdict_may_be_stored():
    # The micro-cache keys on Authorization: a cookie's verdict (no Authorization at all) must never be stored.
    clock = FakeClock()
    client = _client(clock, verdict_max_age_seconds=5)
    token = _hs256(clock())
    by_cookie = client.simulate_get("/verify", headers={"X-Jwtgate-Cookie-Token": token})
    assert by_cookie.status_code == 200
    assert by_cookie.headers["cache-control"] == "no-store"
    by_header = client.simulate_get("/verify", headers={"Authorization": f"bearer {token}"})
    assert by_header.headers["cache-control"] == "max-age=4"
