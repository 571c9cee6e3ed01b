"""Browser sessions in the auth API: login, refresh and logout with HttpOnly cookies and the Origin check."""

from datetime import datetime, timezone

import pytest
from falcon import testing
from jose import jwt

from auth_api import passwords
from auth_api.app import create_app
from auth_api.config import Settings
from auth_api.cookies import ACCESS_COOKIE, REFRESH_COOKIE
from auth_api.keys import KeyRing
from auth_api.store import UserStore
from jwtgate.settings import ConfigError


PASSWORD = "correct horse battery staple"
SITE = "http://gateway.test:8080"
# What Nginx sends the auth API (gateway.conf.template), and what a browser on the login page adds.
SAME_SITE = {"X-Jwtgate-Self-Origin": SITE, "Origin": SITE}


# Where the clock fixture (tests/unit/conftest.py) starts.
CLOCK_START = 1_800_000_000.2


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=str(tmp_path), access_token_ttl_seconds=600, refresh_token_ttl_seconds=3600,
                    key_activation_delay_seconds=0)


def make_client(settings, revocations, clock):
    store = UserStore.open(settings, clock=clock)
    if store.get_user("alice") is None:
        store.add_user("alice", passwords.hash(PASSWORD), roles=["user"], scopes=["orders:read"])
    keyring = KeyRing.open(settings, clock=clock)
    return testing.TestClient(create_app(settings, store=store, keyring=keyring, revocations=revocations,
                                         clock=clock))


@pytest.fixture
def client(settings, revocations, clock):
    return make_client(settings, revocations, clock)


def cookie_login(client, headers=SAME_SITE):
    return client.simulate_post("/api/auth/login", headers=headers,
                                json={"username": "alice", "password": PASSWORD, "cookie": True})


def revoked(revocations):
    return {(entry.kind, entry.value) for entry in revocations.changes(0)[0]}


def jar(response):
    return {name: cookie.value for name, cookie in response.cookies.items()}


def test_cookie_login_sets_both_tokens_as_strict_httponly_cookies(client, settings):
    response = cookie_login(client)
    assert response.status_code == 200
    access, refresh = response.cookies[ACCESS_COOKIE], response.cookies[REFRESH_COOKIE]
    for cookie in (access, refresh):
        assert cookie.http_only and cookie.secure and cookie.same_site == "Strict"
    assert (access.path, access.max_age) == ("/", settings.access_token_ttl_seconds)
    assert (refresh.path, refresh.max_age) == ("/api/auth/", settings.refresh_token_ttl_seconds)
    claims = jwt.get_unverified_claims(access.value)
    assert claims["sub"] == "alice" and claims["sid"]
    # Page scripts never see the tokens: the body names neither.
    assert response.json == {"cookie": True, "expires_in": 600, "refresh_expires_in": 3600}
    assert access.value not in response.text and refresh.value not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_without_cookie_the_login_answers_as_before(client):
    response = client.simulate_post("/api/auth/login", json={"username": "alice", "password": PASSWORD,
                                                             "cookie": False})
    assert response.status_code == 200
    assert response.cookies == {}
    assert {"access_token", "refresh_token"} <= set(response.json)


def test_secure_can_be_turned_off_for_plain_http(tmp_path, revocations, clock):
    settings = Settings(data_dir=str(tmp_path), cookie_secure=False, key_activation_delay_seconds=0)
    response = cookie_login(make_client(settings, revocations, clock))
    assert response.status_code == 200
    assert not response.cookies[ACCESS_COOKIE].secure and not response.cookies[REFRESH_COOKIE].secure


@pytest.mark.parametrize("headers", [
    {},
    {"X-Jwtgate-Self-Origin": SITE},
    {"X-Jwtgate-Self-Origin": SITE, "Origin": "http://evil.test:8080"},
    {"X-Jwtgate-Self-Origin": SITE, "Origin": "null"},
    {"X-Jwtgate-Self-Origin": SITE, "Origin": "https://gateway.test:8080"},
    # Without Nginx's word on its own origin, no Origin is ours.
    {"Origin": SITE},
])
def test_cookie_login_from_another_origin_is_refused(client, headers):
    response = cookie_login(client, headers)
    assert response.status_code == 403
    assert response.json["error"] == "cross_site_request"
    assert response.cookies == {}


def test_allowed_origins_may_use_cookies_too(tmp_path, revocations, clock):
    settings = Settings(data_dir=str(tmp_path), allowed_origins=frozenset({"https://app.test"}),
                        key_activation_delay_seconds=0)
    client = make_client(settings, revocations, clock)
    assert cookie_login(client, {"X-Jwtgate-Self-Origin": SITE, "Origin": "https://app.test"}).status_code == 200


@pytest.mark.parametrize("value", ["yes", 1, None, []])
def test_cookie_must_be_a_boolean(client, value):
    response = client.simulate_post("/api/auth/login", headers=SAME_SITE,
                                    json={"username": "alice", "password": PASSWORD, "cookie": value})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_cookie_settings_from_the_environment():
    settings = Settings.from_env({"AUTH_COOKIE_SECURE": "0", "AUTH_ALLOWED_ORIGINS": "https://a.test http://b:81"})
    assert settings.cookie_secure is False
    assert settings.allowed_origins == {"https://a.test", "http://b:81"}
    assert Settings.from_env({}).cookie_secure is True
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"AUTH_COOKIE_SECURE": "maybe", "AUTH_ALLOWED_ORIGINS": "https://a.test/path"})
    assert {name for name, _ in error.value.problems} == {"AUTH_COOKIE_SECURE", "AUTH_ALLOWED_ORIGINS"}


def test_refresh_with_the_cookie_rotates_both_cookies(client, clock):
    first = jar(cookie_login(client))
    clock.tick(10)
    response = client.simulate_post("/api/auth/refresh", json={}, headers=SAME_SITE, cookies=first)
    assert response.status_code == 200
    second = jar(response)
    assert second[REFRESH_COOKIE] != first[REFRESH_COOKIE]
    assert jwt.get_unverified_claims(second[ACCESS_COOKIE])["sid"] == \
        jwt.get_unverified_claims(first[ACCESS_COOKIE])["sid"]
    assert response.json == {"cookie": True, "expires_in": 600, "refresh_expires_in": 3590}
    assert response.cookies[REFRESH_COOKIE].max_age == 3590


def test_reusing_a_spent_refresh_cookie_revokes_the_session(client, revocations):
    first = jar(cookie_login(client))
    assert client.simulate_post("/api/auth/refresh", json={}, headers=SAME_SITE, cookies=first).status_code == 200
    reuse = client.simulate_post("/api/auth/refresh", json={}, headers=SAME_SITE, cookies=first)
    assert reuse.status_code == 401
    assert reuse.json["error"] == "invalid_grant"
    assert ("sid", jwt.get_unverified_claims(first[ACCESS_COOKIE])["sid"]) in revoked(revocations)


def test_refresh_with_the_cookie_needs_our_origin(client):
    cookies = jar(cookie_login(client))
    response = client.simulate_post("/api/auth/refresh", json={}, cookies=cookies,
                                    headers={"X-Jwtgate-Self-Origin": SITE, "Origin": "http://evil.test"})
    assert response.status_code == 403
    assert response.json["error"] == "cross_site_request"


def test_a_refresh_token_in_the_body_wins_over_the_cookie(client):
    cookies = jar(cookie_login(client))
    body = client.simulate_post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).json
    response = client.simulate_post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]},
                                    cookies=cookies)
    assert response.status_code == 200
    assert "access_token" in response.json and response.cookies == {}


def test_logout_with_cookies_revokes_clears_and_ends_the_session(client, revocations):
    cookies = jar(cookie_login(client))
    response = client.simulate_post("/api/auth/logout", headers=SAME_SITE, cookies=cookies)
    assert response.status_code == 204
    claims = jwt.get_unverified_claims(cookies[ACCESS_COOKIE])
    assert {("jti", claims["jti"]), ("sid", claims["sid"])} <= revoked(revocations)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, "/api/auth/")):
        cleared = response.cookies[name]
        assert (cleared.value, cleared.path, cleared.expires) == ("", path, epoch)
        assert cleared.http_only and cleared.same_site == "Strict"
    refresh = client.simulate_post("/api/auth/refresh", json={}, headers=SAME_SITE, cookies=cookies)
    assert refresh.status_code == 401


@pytest.mark.parametrize("send_access", [True, False])
def test_after_the_access_token_expired_the_refresh_cookie_still_ends_the_session(client, revocations, clock,
                                                                                   send_access):
    cookies = jar(cookie_login(client))
    clock.tick(601 + 30)
    # A browser drops the access cookie when it expires (Max-Age); a stale copy is no obstacle either.
    sent = cookies if send_access else {REFRESH_COOKIE: cookies[REFRESH_COOKIE]}
    response = client.simulate_post("/api/auth/logout", headers=SAME_SITE, cookies=sent)
    assert response.status_code == 204
    assert ("sid", jwt.get_unverified_claims(cookies[ACCESS_COOKIE])["sid"]) in revoked(revocations)


@pytest.mark.parametrize("origin", [None, "http://evil.test", "null"])
def test_logout_with_cookies_needs_our_origin(client, revocations, origin):
    cookies = jar(cookie_login(client))
    headers = {"X-Jwtgate-Self-Origin": SITE, **({"Origin": origin} if origin else {})}
    response = client.simulate_post("/api/auth/logout", headers=headers, cookies=cookies)
    assert response.status_code == 403
    assert response.json["error"] == "cross_site_request"
    assert revoked(revocations) == set()


def test_logout_with_worthless_cookies_is_401(client, revocations):
    response = client.simulate_post("/api/auth/logout", headers=SAME_SITE,
                                    cookies={ACCESS_COOKIE: "nope", REFRESH_COOKIE: "x" * 43})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert revoked(revocations) == set()


def test_the_authorization_header_wins_over_cookies(client, revocations):
    cookies = jar(cookie_login(client))
    response = client.simulate_post("/api/auth/logout", headers={**SAME_SITE, "Authorization": "Bearer nope"},
                                    cookies=cookies)
    assert response.status_code == 401
    assert revoked(revocations) == set()
