"""jwtgate.fetch against real servers on loopback: TLS with our own CA, redirects, size, time, http:// and proxies."""

import base64
import json
import time

import pytest

from jwtgate import fetch
from tests.http_servers import CountingProxy, LocalServer, Route, TestCA

JWKS = json.dumps({"keys": []}).encode()
NO_PROXY = {}


@pytest.fixture
def ca(tmp_path):
    return TestCA(tmp_path)


@pytest.fixture
def https(ca):
    with LocalServer({"/jwks": Route(JWKS, headers={"Cache-Control": "public, max-age=300"})},
                     tls=ca.server_context) as server:
        yield server


@pytest.fixture
def plain():
    with LocalServer({"/jwks": Route(JWKS)}) as server:
        yield server


def test_https_verifies_against_the_ca_bundle_given_and_only_then_passes(https, ca):
    with pytest.raises(fetch.FetchError, match="certificate not trusted"):
        fetch.get(f"{https.url}/jwks", environ=NO_PROXY)
    response = fetch.get(f"{https.url}/jwks", ca_file=str(ca.ca_file), environ=NO_PROXY)
    assert (response.status, response.body, response.max_age()) == (200, JWKS, 300)


def test_the_host_name_is_verified_too(tmp_path):
    ca = TestCA(tmp_path, names=("idp.example",), addresses=())
    with LocalServer({"/jwks": Route(JWKS)}, tls=ca.server_context) as server:
        with pytest.raises(fetch.FetchError, match="certificate not trusted"):
            fetch.get(f"{server.url}/jwks", ca_file=str(ca.ca_file), environ=NO_PROXY)


def test_a_ca_bundle_that_cannot_be_read_is_an_error_naming_it(https, tmp_path):
    with pytest.raises(fetch.FetchError, match="CA bundle .*missing.pem"):
        fetch.get(f"{https.url}/jwks", ca_file=str(tmp_path / "missing.pem"), environ=NO_PROXY)


def test_plain_http_to_loopback_passes(plain):
    response = fetch.get(f"{plain.url}/jwks", environ=NO_PROXY)
    assert (response.status, response.body, response.max_age()) == (200, JWKS, None)
    assert fetch.get(f"{plain.url}/missing", environ=NO_PROXY).status == 404


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_not_followed(plain, status):
    plain.routes["/moved"] = Route(status=status, headers={"Location": f"{plain.url}/jwks"})
    with pytest.raises(fetch.FetchError, match=f"redirect \\({status}\\) not followed"):
        fetch.get(f"{plain.url}/moved", environ=NO_PROXY)
    assert [path for path, _ in plain.requests] == ["/moved"]


def test_an_oversized_body_is_refused(plain):
    plain.routes["/big"] = Route(b"x" * 2048)
    assert len(fetch.get(f"{plain.url}/big", max_bytes=2048, environ=NO_PROXY).body) == 2048
    with pytest.raises(fetch.FetchError, match="larger than 2047 bytes"):
        fetch.get(f"{plain.url}/big", max_bytes=2047, environ=NO_PROXY)
    assert fetch.DEFAULT_MAX_BYTES == 512 * 1024


def test_an_oversized_body_without_content_length_is_refused_while_reading(plain):
    plain.routes["/big"] = Route(b"x" * 300_000, length=False)
    assert len(fetch.get(f"{plain.url}/big", max_bytes=300_000, environ=NO_PROXY).body) == 300_000
    with pytest.raises(fetch.FetchError, match="larger than 299999 bytes"):
        fetch.get(f"{plain.url}/big", max_bytes=299_999, environ=NO_PROXY)


@pytest.mark.parametrize("route", [
    Route(JWKS, delay=2.0),
    Route(b"x" * 40, trickle=0.1),
    Route(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 30 + b"\r\n\r\n{}", trickle=0.1),
], ids=["silent", "trickling-body", "trickling-header"])
def test_a_slow_server_times_out_within_the_whole_timeout(plain, route):
    plain.routes["/slow"] = route
    started = time.monotonic()
    with pytest.raises(fetch.FetchError, match="timed out"):
        fetch.get(f"{plain.url}/slow", timeout=0.5, environ=NO_PROXY)
    # A timeout per read would wait out the whole trickle (3 s and more); the room above 0.5 s is for load.
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("url", ["http://192.0.2.1/jwks", "http://idp.example/jwks", "http://[2001:db8::1]/jwks",
                                 "http://127.0.0.1.nip.io/jwks", "http://[::ffff:127.0.0.1]/jwks"])
def test_plain_http_to_a_host_not_on_loopback_is_refused_before_any_connection(url):
    with CountingProxy() as proxy:
        environ = {"HTTP_PROXY": proxy.url}
        with pytest.raises(fetch.FetchError, match="plain http:// is only allowed to loopback hosts"):
            fetch.get(url, timeout=0.5, environ=environ)
    assert proxy.requests == []


def test_plain_http_elsewhere_only_when_allowed_and_through_http_proxy(plain):
    # The proxy reaches "idp.example" on loopback: no name is resolved anywhere.
    url = f"http://idp.example:{plain.port}/jwks"
    with CountingProxy() as proxy:
        environ = {"http_proxy": proxy.url}
        with pytest.raises(fetch.FetchError, match="only allowed to loopback"):
            fetch.get(url, environ=environ)
        assert proxy.requests == []
        assert fetch.get(url, allow_http=True, environ=environ).body == JWKS
    assert [request[:2] for request in proxy.requests] == [("GET", url)]
    assert plain.requests[0][0] == "/jwks" and plain.requests[0][1]["Host"] == f"idp.example:{plain.port}"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/jwks", "file:///etc/passwd", "https:///jwks", "jwks.json",
                                 "https://user:secret@idp.example/jwks", "https://idp.example/jwks#frag",
                                 "https://idp.example:99999/jwks"])
def test_urls_that_are_not_plain_https_are_refused(url):
    with pytest.raises(fetch.FetchError) as raised:
        fetch.check_url(url)
    assert "secret" not in str(raised.value) and "user" not in str(raised.value)


def test_https_proxy_is_used_and_no_proxy_bypasses_it(https, ca):
    with CountingProxy() as proxy:
        environ = {"HTTPS_PROXY": proxy.url}
        assert fetch.get(f"{https.url}/jwks", ca_file=str(ca.ca_file), environ=environ).body == JWKS
        assert [request[:2] for request in proxy.requests] == [("CONNECT", f"localhost:{https.port}")]
        for no_proxy in ("localhost", ".localhost", "example.org, localhost", "*"):
            fetch.get(f"{https.url}/jwks", ca_file=str(ca.ca_file), environ=dict(environ, NO_PROXY=no_proxy))
        assert len(proxy.requests) == 1
        fetch.get(f"{https.url}/jwks", ca_file=str(ca.ca_file), environ=dict(environ, NO_PROXY="example.org"))
        assert len(proxy.requests) == 2
    assert len(https.requests) == 6


def test_a_tunnelled_connection_still_verifies_the_server(https):
    with CountingProxy() as proxy:
        with pytest.raises(fetch.FetchError, match="certificate not trusted"):
            fetch.get(f"{https.url}/jwks", environ={"https_proxy": proxy.url})
        assert len(proxy.requests) == 1


def test_proxy_credentials_are_sent_and_never_shown(https, ca):
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with CountingProxy(answer=refusal) as proxy:
        environ = {"HTTPS_PROXY": f"http://jwtgate:pr0xy-s3cret@127.0.0.1:{proxy.port}"}
        with pytest.raises(fetch.FetchError) as raised:
            fetch.get(f"{https.url}/jwks?token=query-s3cret", ca_file=str(ca.ca_file), environ=environ)
    assert "407" in str(raised.value)
    assert "s3cret" not in str(raised.value) and "s3cret" not in repr(raised.value.__cause__)
    assert proxy.requests[0][2]["Proxy-Authorization"] == "Basic " + base64.b64encode(b"jwtgate:pr0xy-s3cret").decode()


def test_unix_socket_urls_still_work(tmp_path):
    # As jwtgate.loopback.http_get does: the auth API's JWKS over its unix socket.
    path = str(tmp_path / "auth.sock")
    with LocalServer({"/.well-known/jwks.json": Route(JWKS, headers={"Cache-Control": "max-age=60"})},
                     unix_socket=path):
        response = fetch.get("http://localhost/.well-known/jwks.json", unix_socket=path, environ=NO_PROXY)
    assert (response.status, response.body, response.max_age()) == (200, JWKS, 60)
