"""HTTP-level attacks through Nginx: spoofed identity, path tricks, methods, header and body abuse."""

import json

import pytest

from tests.security.gate import PROTECTED, PUBLIC


IDENTITY_NAMES = ["X-User-Id", "x-user-id", "X-USER-ID", "X-User-ID", "x-User-iD", "X_User_Id", "x_user_id",
                  "X-User-Roles", "x-user-roles", "X_User_Roles", "X-User-Scopes", "x-user-scopes"]


def request(method, path, *header_lines):
    """Raw request bytes, exactly as given: no client normalises the path or the headers."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: gateway", *header_lines, b"Connection: close"]
    return b"\r\n".join([*lines, b"", b""])


# --- identity headers spoofed by the client -------------------------------------------------------


@pytest.mark.parametrize("name", IDENTITY_NAMES)
def test_spoofed_identity_header_without_token(gate, name):
    gate.refused(headers=[(name, "admin")])


@pytest.mark.parametrize("name", IDENTITY_NAMES)
def test_spoofed_identity_header_with_invalid_token(gate, name):
    gate.refused(token="a.b.c", headers=[(name, "admin")])


@pytest.mark.parametrize("name", IDENTITY_NAMES)
def test_spoofed_identity_header_on_public_route_is_dropped(gate, name):
    answer, hits = gate.send("GET", PUBLIC, headers=[(name, "admin")])
    assert answer.status == 200
    assert hits == [("GET", PUBLIC, None)]


@pytest.mark.parametrize("name", ["X-User-Id", "x-user-id", "X_User_Id"])
def test_spoofed_identity_header_with_valid_token_is_replaced(gate, mint, name):
    answer, hits = gate.send(token=mint(), headers=[(name, "admin"), ("X-User-Roles", "admin")])
    assert answer.status == 200
    assert hits == [("GET", PROTECTED, "alice")]
    assert answer.json()["userId"] == "alice" and "admin" not in answer.json()["roles"]


SPOOFED_CLAIMS = "eyJzdWIiOiJtYWxsb3J5Iiwicm9sZXMiOlsiYWRtaW4iXX0"    # {"sub":"mallory","roles":["admin"]}


@pytest.mark.parametrize("name", ["X-User-Claims", "x-user-claims", "X_User_Claims"])
def test_spoofed_claim_set_never_reaches_the_backend(gate, mint, name):
    # The gateway forwards no claim set by default (VALIDATOR_FORWARD_CLAIMS): the header arrives empty.
    answer, hits = gate.send(token=mint(), headers=[(name, SPOOFED_CLAIMS)])
    assert answer.status == 200 and hits == [("GET", PROTECTED, "alice")]
    assert answer.json()["claims"] is None
    gate.refused(headers=[(name, SPOOFED_CLAIMS)])


def test_valid_token_on_public_route_gives_no_identity(gate, mint):
    answer, hits = gate.send("GET", PUBLIC, token=mint(), headers=[("X-User-Id", "admin")])
    assert answer.status == 200 and hits == [("GET", PUBLIC, None)]


def test_two_spoofed_identity_headers_on_public_route(gate):
    answer, hits = gate.send("GET", PUBLIC, headers=[("X-User-Id", "admin"), ("X-User-Id", "root")])
    assert answer.status == 200 and hits == [("GET", PUBLIC, None)]


# Header lines Nginx reads as an X-User-Id header (optional whitespace around the value, RFC 9112
# section 5), which the gateway must then overwrite, and lines it refuses with 400 (whitespace before
# the colon, section 5.1; obsolete line folding, section 5.2).
WHITESPACE_SPELLINGS = {
    "tab-before-value": b"X-User-Id:\tadmin",
    "spaces-around-value": b"X-User-Id:    admin   ",
    "no-space-after-colon": b"X-User-Id:admin",
}
MALFORMED_HEADER_LINES = {
    "space-before-colon": b"X-User-Id : admin",
    "tab-before-colon": b"X-User-Id\t: admin",
    "leading-space-line": b" X-User-Id: admin",
    "obs-fold-continuation": b"X-Junk: a\r\n X-User-Id: admin",
    "folded-value": b"X-User-Id:\r\n admin",
}
WHITESPACE_TRICKS = {**WHITESPACE_SPELLINGS, **MALFORMED_HEADER_LINES}


@pytest.mark.parametrize("trick", sorted(WHITESPACE_TRICKS))
def test_spoofed_identity_with_whitespace_trick_on_protected_route(gate, trick):
    answers, hits = gate.send_raw(request("GET", PROTECTED, WHITESPACE_TRICKS[trick]))
    assert answers, "no answer"
    if trick in MALFORMED_HEADER_LINES:
        gate.blocked(answers[0], hits, {400})
    else:
        gate.assert_refused(answers[0], hits)


@pytest.mark.parametrize("trick", sorted(WHITESPACE_TRICKS))
def test_spoofed_identity_with_whitespace_trick_on_public_route(gate, trick):
    answers, hits = gate.send_raw(request("GET", PUBLIC, WHITESPACE_TRICKS[trick]))
    assert answers, "no answer"
    if trick in MALFORMED_HEADER_LINES:
        gate.blocked(answers[0], hits, {400})
    else:
        # Nginx took the header; the public location blanks it before the backend sees it.
        assert answers[0].status == 200
        assert hits == [("GET", PUBLIC, None)]


TRAILER_BODY = b"4\r\ndata\r\n0\r\nX-User-Id: admin\r\n\r\n"


def test_spoofed_identity_in_chunked_trailer_on_protected_route(gate):
    head = b"POST /api/protected/ HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    answers, hits = gate.send_raw(head + TRAILER_BODY)
    gate.assert_refused(answers[0], hits)


def test_spoofed_identity_in_chunked_trailer_on_public_route(gate):
    # The public handler answers GET only; what matters is that no identity reached the backend.
    head = b"POST /api/public/ HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    answers, hits = gate.send_raw(head + TRAILER_BODY)
    assert answers[0].status < 500
    assert hits == [("POST", PUBLIC, None)]


# --- path variants without a token ----------------------------------------------------------------


# (path, what Nginx must answer): 401 when the path lands on the protected location, 404 for the
# catch-all, 400 for what Nginx refuses to parse, 301 for its add-a-slash redirect.
PATHS = {
    "encoded-slash": ("/api%2Fprotected/", 401),
    "encoded-slash-lowercase": ("/api%2fprotected/", 401),
    "dot-dot-segment": ("/api/public/../protected/", 401),
    "encoded-dot-dot": ("/api/public/%2e%2e/protected/", 401),
    "encoded-dot-dot-upper": ("/api/public/%2E%2E/protected/", 401),
    "encoded-dot-dot-slash": ("/api/public/%2e%2e%2fprotected/", 401),
    "dot-dot-encoded-slash": ("/api/public/..%2fprotected/", 401),
    "dot-segment": ("/api/./protected/", 401),
    "dot-then-dot-dot": ("/api/public/./../protected/orders", 401),
    "double-slashes": ("//api//protected/", 401),
    "many-slashes": ("///api///protected///", 401),
    "encoded-letters": ("/%61pi/prot%65cted/", 401),
    "trailing-dot": ("/api/protected/.", 401),
    "trailing-encoded-space": ("/api/protected/%20", 401),
    "trailing-encoded-slash": ("/api/protected%2f", 401),
    "query-string": ("/api/protected/?user=admin", 401),
    "absolute-form": ("http://gateway/api/protected/", 401),
    "case-upper-prefix": ("/API/protected/", 404),
    "case-upper-rest": ("/api/PROTECTED/", 404),
    "semicolon-parameter": ("/api/protected;/", 404),
    "backslashes": ("/api/public\\..\\protected/", 404),
    "no-trailing-slash": ("/api/protected", 301),
    "encoded-null": ("/api/protected%00/", 400),
}


@pytest.mark.parametrize("variant", sorted(PATHS))
def test_path_variant_without_token_never_reaches_protected_handler(gate, variant):
    path, expected = PATHS[variant]
    answers, hits = gate.send_raw(request("GET", path, b"X-User-Id: admin"))
    answer = answers[0]
    assert answer.status == expected, answer.text()
    if expected == 401:
        gate.assert_refused(answer, hits)
    else:
        assert hits == []
        gate.assert_no_leak(answer)


@pytest.mark.parametrize("path", ["/api/public/..;/protected/", "/api/public/%2e%2e;/protected/",
                                  "/api/public/..%5cprotected/"])
def test_path_variant_via_public_location_reaches_backend_without_identity(gate, path):
    # These stay inside /api/public/ for Nginx: the backend may see them, never with a user, never served.
    answers, hits = gate.send_raw(request("GET", path, b"X-User-Id: admin"))
    assert answers[0].status == 404
    assert all(user is None for _, _, user in hits)


# The reverse direction: a raw path under /api/protected/ that Nginx normalises out of it (into the
# public location). Nginx routes on the normalised URI, so no auth_request runs; the backend must
# then not be handed a path that its router sends to the protected handler.
OUT_OF_PROTECTED = {
    "dot-dot": "/api/protected/../public/",
    "encoded-dot-dot": "/api/protected/%2e%2e/public/",
    "encoded-dot-dot-upper": "/api/protected/%2E%2E/public/",
    "dot-dot-encoded-slash": "/api/protected/..%2fpublic/",
    "two-levels-encoded": "/api/protected/admin/%2e%2e/%2e%2e/public/",
}


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "POST"])
@pytest.mark.parametrize("variant", sorted(OUT_OF_PROTECTED))
def test_dot_segments_out_of_protected_prefix_never_reach_protected_handler(gate, variant, method):
    answers, hits = gate.send_raw(request(method, OUT_OF_PROTECTED[variant], b"X-User-Id: admin",
                                          b"Content-Length: 0"))
    reached = [hit for hit in hits if hit[1].startswith("/api/protected")]
    assert reached == [], f"the backend's protected handler ran without auth_request: {reached}, " \
                          f"answer {answers[0].status} {answers[0].body[:80]!r}"
    assert all(user is None for _, _, user in hits)


# --- every method without a token -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND",
                                    "MKCOL", "FOOBAR"])
def test_method_without_token(gate, method):
    gate.refused(method, headers=[("X-User-Id", "admin")])


def test_http_1_0_without_host(gate):
    gate.refused_raw(b"GET /api/protected/ HTTP/1.0\r\nX-User-Id: admin\r\n\r\n")


def test_http_1_1_without_host(gate):
    answers, hits = gate.send_raw(b"GET /api/protected/ HTTP/1.1\r\nX-User-Id: admin\r\nConnection: close\r\n\r\n")
    gate.blocked(answers[0], hits, {400})


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_method_nginx_refuses_outright(gate, method):
    answer, hits = gate.send(method, headers=[("X-User-Id", "admin")])
    gate.blocked(answer, hits, {400, 405})


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "OPTIONS"])
def test_method_with_invalid_token(gate, method):
    gate.refused(method, token="eyJhbGciOiJub25lIn0.e30.")


def test_method_override_headers_do_not_bypass(gate):
    headers = [("X-HTTP-Method-Override", "GET"), ("X-Method-Override", "OPTIONS"), ("X-Original-URI", PUBLIC),
               ("X-Original-Method", "OPTIONS"), ("X-Rewrite-URL", PUBLIC), ("X-Forwarded-Prefix", "/api/public")]
    gate.refused("POST", headers=headers)


# --- duplicate, oversized and odd Authorization headers -------------------------------------------


@pytest.mark.parametrize("pair", ["valid-valid", "valid-invalid", "invalid-valid", "valid-empty", "valid-basic",
                                  "valid-lowercase-name"])
def test_duplicate_authorization_headers(gate, mint, pair):
    valid = f"Bearer {mint()}"
    second = {"valid-valid": ("Authorization", valid), "valid-invalid": ("Authorization", "Bearer a.b.c"),
              "invalid-valid": ("Authorization", "Bearer a.b.c"), "valid-empty": ("Authorization", ""),
              "valid-basic": ("Authorization", "Basic YWRtaW46YWRtaW4="),
              "valid-lowercase-name": ("authorization", valid)}[pair]
    headers = [second, ("Authorization", valid)] if pair == "invalid-valid" else [("Authorization", valid), second]
    answer, hits = gate.send(headers=headers)
    if answer.status == 401:
        gate.assert_refused(answer, hits)
    else:
        gate.blocked(answer, hits, {400})


@pytest.mark.parametrize("separator", [", ", ",", " , "])
def test_two_tokens_in_one_authorization_header(gate, mint, separator):
    gate.refused(headers=[("Authorization", f"Bearer {mint()}{separator}Bearer {mint()}")])


@pytest.mark.parametrize("size", [4500, 7000])
def test_oversized_authorization_under_nginx_limit(gate, size):
    gate.refused(headers=[("Authorization", "Bearer " + "A" * size)])


@pytest.mark.parametrize("size", [9000, 40000])
def test_oversized_authorization_over_nginx_limit(gate, size):
    answer, hits = gate.send(headers=[("Authorization", "Bearer " + "A" * size)])
    gate.blocked(answer, hits, {400, 431})


def test_oversized_headers_in_total_with_valid_token(gate, mint):
    headers = [(f"X-Pad-{number}", "p" * 7000) for number in range(6)]
    answer, hits = gate.send(token=mint(), headers=headers)
    gate.blocked(answer, hits, {400, 431})


def test_many_authorization_headers(gate, mint):
    # Nginx refuses a repeated Authorization header itself.
    answer, hits = gate.send(headers=[("Authorization", f"Bearer {mint()}")] * 20)
    gate.blocked(answer, hits, {400})


# --- control characters in request headers: fail closed, and never a 5xx --------------------------
# Nginx forwards these bytes to the validator; if the validator's HTTP server rejects them, Nginx
# sees an unexpected status from auth_request and the client gets a 5xx instead of a 401.

CONTROL_BYTES = [0x01, 0x08, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F]


@pytest.mark.parametrize("byte", CONTROL_BYTES, ids=lambda byte: f"0x{byte:02x}")
def test_control_character_in_authorization_is_401_not_5xx(gate, byte):
    gate.refused_raw(request("GET", PROTECTED, b"Authorization: Bearer a.b" + bytes([byte]) + b"c"))


@pytest.mark.parametrize("byte", CONTROL_BYTES, ids=lambda byte: f"0x{byte:02x}")
def test_control_character_in_another_header_without_token_is_401_not_5xx(gate, byte):
    gate.refused_raw(request("GET", PROTECTED, b"User-Agent: probe" + bytes([byte])))


@pytest.mark.parametrize("byte", [0x01, 0x7F], ids=lambda byte: f"0x{byte:02x}")
def test_control_character_in_another_header_with_valid_token_is_400_not_5xx(gate, mint, byte):
    # Nginx refuses the header itself (400), before any subrequest: never "auth unavailable".
    answers, hits = gate.send_raw(request("GET", PROTECTED, f"Authorization: Bearer {mint()}".encode(),
                                          b"User-Agent: probe" + bytes([byte])))
    assert answers, "no answer"
    gate.blocked(answers[0], hits, {400})


@pytest.mark.parametrize("byte", [0x00, 0x0A, 0x0D], ids=["nul", "lf", "cr"])
def test_nul_cr_lf_in_authorization_are_refused(gate, byte):
    # NUL and a bare CR: Nginx refuses the header line (400). A bare LF ends the line (RFC 9112
    # section 2.2), so the token is `a.b`, which the validator refuses (401).
    value = b"Authorization: Bearer a.b" + bytes([byte]) + b"c"
    answers, hits = gate.send_raw(request("GET", PROTECTED, value))
    assert answers, "no answer"
    if byte == 0x0A:
        gate.assert_refused(answers[0], hits)
    else:
        gate.blocked(answers[0], hits, {400})


@pytest.mark.parametrize("byte", [0x80, 0xA0, 0xFF], ids=lambda byte: f"0x{byte:02x}")
def test_non_ascii_byte_in_authorization(gate, mint, byte):
    token = mint()
    gate.refused_raw(request("GET", PROTECTED, b"Authorization: Bearer " + token[:40].encode() + bytes([byte])
                             + token[40:].encode()))


# --- request bodies -------------------------------------------------------------------------------


def test_large_body_with_invalid_token_never_reaches_backend(gate):
    gate.refused("POST", token="a.b.c", content=b"x" * 900_000)


def test_chunked_body_with_invalid_token_never_reaches_backend(gate):
    gate.refused("PUT", token="a.b.c", content=(b"y" * 4096 for _ in range(64)))


def test_body_over_client_max_body_size_with_invalid_token(gate):
    answer, hits = gate.send("POST", token="a.b.c", content=b"z" * 2_000_000)
    assert answer.status in (401, 413) and hits == []


def test_smuggled_request_in_body_of_refused_request(gate):
    smuggled = b"GET /api/protected/smuggled HTTP/1.1\r\nHost: gateway\r\nX-User-Id: admin\r\n\r\n"
    first = (b"POST /api/protected/ HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer a.b.c\r\n"
             b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
    follow = b"GET /api/public/ HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
    answers, hits = gate.send_raw(first + follow, responses=3)
    assert [answer.status for answer in answers] == [401, 200]
    assert hits == [("GET", PUBLIC, None)]


def test_content_length_and_chunked_together(gate):
    smuggled = b"GET /api/protected/ HTTP/1.1\r\nHost: gateway\r\nX-User-Id: admin\r\n\r\n"
    data = (b"POST /api/protected/ HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer a.b.c\r\n"
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
    answers, hits = gate.send_raw(data, responses=2)
    assert hits == []
    assert answers[0].status in (400, 401)


def test_large_body_with_valid_token_reaches_backend(gate, mint):
    answer, hits = gate.send("POST", PROTECTED + "upload", token=mint(), content=b"x" * 900_000)
    assert answer.status == 200
    assert hits == [("POST", PROTECTED + "upload", "alice")]
    assert json.loads(answer.body)["bodyBytes"] == 900_000


def test_chunked_body_with_valid_token_reaches_backend(gate, mint):
    answer, hits = gate.send("PUT", PROTECTED + "upload", token=mint(), content=(b"y" * 4096 for _ in range(64)))
    assert answer.status == 200
    assert hits == [("PUT", PROTECTED + "upload", "alice")]
    assert json.loads(answer.body)["bodyBytes"] == 4096 * 64
