"""Browser clients through the real Nginx: the login page, the redirect to it, and cookie sessions.

Requests here carry their cookies explicitly, in fresh clients: the shared gateway client's jar must
never pick up a session cookie that would authenticate other tests' requests.
"""

import time

import httpx
import pytest


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def fresh(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10.0, follow_redirects=False) as client:
        yield client


def cookie_login(client, gateway):
    response = client.post("/api/auth/login", headers={"Origin": gateway.url},
                           json={"username": gateway.username, "password": gateway.password, "cookie": True})
    assert response.status_code == 200, response.text
    cookies = {name: response.cookies[name] for name in ("jwtgate_access", "jwtgate_refresh")}
    client.cookies.clear()
    return cookies


def cookie_header(cookies):
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def test_a_browser_without_a_session_is_sent_to_the_login_page(gateway, fresh):
    before = len(gateway.backend_hits())
    response = fresh.get("/api/protected/reports?year=2026&sort=desc", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 302
    # Relative, and the original path and query as they were sent (the page reads everything after next=).
    assert response.headers["location"] == "/login/?next=/api/protected/reports?year=2026&sort=desc"
    assert response.headers["cache-control"] == "no-store"
    assert len(gateway.backend_hits()) == before


def test_head_is_redirected_too(fresh):
    response = fresh.head("/api/protected/", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"] == "/login/?next=/api/protected/"


def test_an_invalid_cookie_also_sends_a_browser_to_the_login_page(fresh):
    response = fresh.get("/api/orders/", headers={"Accept": BROWSER_ACCEPT, "Cookie": "jwtgate_access=a.b.c"})
    assert response.status_code == 302
    assert response.headers["location"] == "/login/?next=/api/orders/"


@pytest.mark.parametrize("headers", [
    {"Accept": "application/json"},
    {"Accept": "*/*"},
    {},
    {"Accept": BROWSER_ACCEPT, "X-Requested-With": "XMLHttpRequest"},
])
def test_api_and_xhr_requests_still_get_the_json_401(fresh, headers):
    response = fresh.get("/api/protected/", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "missing_token", "message": "Missing Authorization header"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_writes_are_never_redirected(fresh, method):
    response = fresh.request(method, "/api/protected/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"


@pytest.mark.parametrize("raw_path", [b"//api/protected/", b"//evil.example/../api/protected/"])
def test_next_is_a_local_path_or_nothing(gateway, raw_path):
    # Nginx merges the slashes to choose the location, but $request_uri keeps them: "//evil.example"
    # as `next` would be another host, so the gateway drops it.
    with httpx.Client(timeout=10.0) as client:
        request = client.build_request("GET", gateway.url, headers={"Accept": "text/html"})
        request.url = request.url.copy_with(raw_path=raw_path)
        response = client.send(request)
    assert response.status_code == 302
    assert response.headers["location"] == "/login/?next=/"


def test_a_signed_in_browser_sees_the_page(gateway, fresh):
    cookies = cookie_login(fresh, gateway)
    response = fresh.get("/api/protected/me", headers={"Accept": BROWSER_ACCEPT, "Cookie": cookie_header(cookies)})
    assert response.status_code == 200
    assert response.json()["userId"] == gateway.username


def test_a_signed_in_but_forbidden_browser_gets_the_403_not_the_login_page(gateway, fresh):
    cookies = cookie_login(fresh, gateway)
    response = fresh.get("/api/admin/", headers={"Accept": BROWSER_ACCEPT, "Cookie": cookie_header(cookies)})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_the_login_page_is_public_static_and_locked_down(fresh):
    page = fresh.get("/login/?next=/api/protected/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html"
    assert '<script src="/login/login.js" defer></script>' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert fresh.get("/login/login.js").headers["content-type"] == "text/javascript"
    assert fresh.get("/login/login.css").headers["content-type"] == "text/css"
    redirect = fresh.get("/login")
    assert (redirect.status_code, redirect.headers["location"]) == (301, "/login/")
    assert fresh.post("/login/", data={"username": "x", "password": "y"}).status_code == 403


def test_cookie_login_needs_the_gateways_own_origin(gateway, fresh):
    body = {"username": gateway.username, "password": gateway.password, "cookie": True}
    # Nginx replaces the client's X-Jwtgate-Self-Origin with its own scheme://host:port.
    forged = fresh.post("/api/auth/login", json=body,
                        headers={"Origin": "http://evil.example", "X-Jwtgate-Self-Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["error"] == "cross_site_request"
    assert "set-cookie" not in forged.headers


def test_cookie_logout_revokes_the_session_at_the_validator(gateway, fresh):
    cookies = cookie_login(fresh, gateway)
    session = {"Cookie": cookie_header(cookies), "Accept": "application/json"}
    assert fresh.get("/api/protected/", headers=session).status_code == 200
    refused = fresh.post("/api/auth/logout", headers={**session, "Origin": "http://evil.example"})
    assert refused.status_code == 403
    logged_out_at = time.time()
    logout = fresh.post("/api/auth/logout", headers={**session, "Origin": gateway.url})
    assert logout.status_code == 204
    cleared = logout.headers.get_list("set-cookie")
    assert sorted(value.split("=")[0] for value in cleared) == ["jwtgate_access", "jwtgate_refresh"]
    assert all("expires=Thu, 01 Jan 1970" in value for value in cleared)
    # Each validator worker refuses the old cookie once it has applied the revocation.
    gateway.every_validator_worker_logged(logged_out_at, lambda record: record["event"] == "revocations applied")
    final = [fresh.get("/api/protected/", headers=session) for _ in range(10)]
    assert {response.status_code for response in final} == {401}
    assert final[0].json()["error"] == "revoked"
    page = fresh.get("/api/protected/", headers={**session, "Accept": BROWSER_ACCEPT})
    assert page.status_code == 302


def test_cookie_refresh_through_the_gateway(gateway, fresh):
    cookies = cookie_login(fresh, gateway)
    response = fresh.post("/api/auth/refresh", json={},
                          headers={"Cookie": cookie_header(cookies), "Origin": gateway.url})
    assert response.status_code == 200
    assert response.cookies["jwtgate_refresh"] != cookies["jwtgate_refresh"]
    assert "access_token" not in response.json()
