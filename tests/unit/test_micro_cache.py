"""The verdict micro-cache's validator side (Cache-Control from exp and the cap) and its Nginx switch."""

from pathlib import Path

import falcon.testing
import pytest

from jwtgate.settings import ConfigError
from launcher.stack import NGINX_DIR, Stack, StackError, with_verdict_cache
from tests.fakes import FakeClock
from tests.minting import claims, hs256
from validator.app import create_app
from validator.config import Settings
from jwtgate.keys import StaticKeys
from validator.resources import verdict_cache_control

pytestmark = pytest.mark.unit

SECRET = b"k" * 40


@pytest.mark.parametrize(("exp_in", "cap", "expected"), [
    (900, 5, "max-age=5"),        # the cap, far from exp
    (6, 5, "max-age=5"),          # floor(6) - 1 = 5
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
    assert verdict_cache_control(now + exp_in, now, cap) == expected


def _hs256(now, **overrides):
    return hs256(SECRET, claims(now, **overrides))


def _client(clock, **settings):
    app = create_app(Settings(hs256_secret=SECRET, **settings), keys=StaticKeys(SECRET, ""), clock=clock)
    return falcon.testing.TestClient(app)


def test_allowed_verdict_carries_max_age_from_the_fake_clock():
    clock = FakeClock()
    client = _client(clock, verdict_max_age_seconds=5, leeway_seconds=0)
    token = _hs256(clock(), exp=int(clock()) + 8)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.simulate_get("/verify", headers=headers).headers["cache-control"] == "max-age=5"
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
    base = {"VALIDATOR_JWKS_URL": "http://auth/jwks"}
    assert Settings.from_env(base).verdict_max_age_seconds == 0
    assert Settings.from_env({**base, "VALIDATOR_VERDICT_MAX_AGE_SECONDS": "3"}).verdict_max_age_seconds == 3
    with pytest.raises(ConfigError, match="VALIDATOR_VERDICT_MAX_AGE_SECONDS"):
        Settings.from_env({**base, "VALIDATOR_VERDICT_MAX_AGE_SECONDS": "60"})


def test_cache_snippet_goes_inside_the_verify_location_only():
    server = (NGINX_DIR / "snippets" / "jwtgate-server.conf").read_text()
    cached = with_verdict_cache(server, Path("/x/jwtgate-verify-cache.conf"))
    verify = cached.split("location = /_jwtgate/verify {")[1].split("\n}")[0]
    assert "    include /x/jwtgate-verify-cache.conf;" in verify
    assert cached.count("include /x/jwtgate-verify-cache.conf;") == 1
    assert cached.replace("    include /x/jwtgate-verify-cache.conf;\n", "") == server
    with pytest.raises(StackError):
        with_verdict_cache("location = /other {\n}\n", Path("/x/c.conf"))


def test_cache_snippet_keys_on_authorization_and_requirements_and_never_stores_refusals():
    text = (NGINX_DIR / "snippets" / "jwtgate-verify-cache.conf").read_text()
    key = next(line for line in text.splitlines() if line.startswith("proxy_cache_key "))
    for variable in ("$http_authorization", "$jwtgate_require_scopes", "$jwtgate_require_roles",
                     "$jwtgate_require_claims"):
        assert variable in key
    assert "proxy_no_cache $upstream_http_x_auth_error;" in text
    # Only the validator's max-age decides: no default lifetime for answers without one.
    assert not any(line.startswith("proxy_cache_valid") for line in text.splitlines())
    assert "proxy_cache_use_stale off;" in text


def test_stack_switch_is_off_by_default():
    assert Stack(Path("/nonexistent"), environ={}).snippets_dir == NGINX_DIR / "snippets"
    stack = Stack(Path("/nonexistent"), environ={"JWTGATE_VERDICT_CACHE": "1"})
    assert stack.snippets_dir == Path("/nonexistent/nginx/snippets")
    assert stack.service_env()["VALIDATOR_VERDICT_MAX_AGE_SECONDS"] == "5"
    assert "VALIDATOR_VERDICT_MAX_AGE_SECONDS" not in Stack(Path("/nonexistent"), environ={}).service_env()


def test_only_a_bearer_header_verdict_may_be_stored():
    # The micro-cache keys on Authorization: a cookie's verdict (no Authorization at all) must never be stored.
    clock = FakeClock()
    client = _client(clock, verdict_max_age_seconds=5)
    token = _hs256(clock())
    by_cookie = client.simulate_get("/verify", headers={"X-Jwtgate-Cookie-Token": token})
    assert by_cookie.status_code == 200
    assert by_cookie.headers["cache-control"] == "no-store"
    by_header = client.simulate_get("/verify", headers={"Authorization": f"bearer {token}"})
    assert by_header.headers["cache-control"] == "max-age=5"
