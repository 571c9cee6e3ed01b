"""The Nginx snippets agree with the validator, and the template renders like the nginx image's envsubst."""

import re
from pathlib import Path


from launcher.stack import NGINX_DIR, render
from jwtgate.reasons import REASONS


def _map(name):
    text = (NGINX_DIR / "snippets" / "jwtgate-http.conf").read_text()
    block = re.search(r"map \$jwtgate_auth_error \$" + name + r" \{(.*?)\n\}", text, re.S).group(1)
    entries = {}
    for line in block.strip().splitlines():
        key, value = line.strip().rstrip(";").split(None, 1)
        entries[key] = value.strip('"')
    return entries


def test_every_reason_has_a_client_code_and_message():
    codes, messages = _map("jwtgate_auth_code"), _map("jwtgate_auth_message")
    assert set(codes) - {"default"} == set(REASONS)
    assert set(messages) - {"default"} == set(REASONS)
    for reason, (error, description) in REASONS.items():
        assert codes[reason] == reason
        expected = description if error in (None, "insufficient_scope") else f"Invalid token: {description}"
        assert messages[reason] == expected


def test_messages_are_json_safe():
    for value in list(_map("jwtgate_auth_code").values()) + list(_map("jwtgate_auth_message").values()):
        assert re.fullmatch(r"[A-Za-z0-9 _:.-]+", value)


def test_render_substitutes_only_given_variables():
    text = "listen ${NGINX_LISTEN}; set $x $host; $NGINX_LISTEN ${OTHER} $request_id"
    assert render(text, {"NGINX_LISTEN": "127.0.0.1:1"}) == (
        "listen 127.0.0.1:1; set $x $host; 127.0.0.1:1 ${OTHER} $request_id")


def test_every_template_variable_is_provided_by_the_stack():
    from launcher.stack import Stack

    stack = Stack(Path("/nonexistent"))
    names = set()
    for template in NGINX_DIR.rglob("*.template"):
        names |= set(re.findall(r"\$\{(NGINX_[A-Z_]+)\}", template.read_text()))
    # NGINX_UPSTREAM_ADDR is per replica (upstream-server.conf.template, rendered by Stack.includes).
    assert names <= set(stack.nginx_variables()) | {"NGINX_UPSTREAM_ADDR"}


def test_verify_location_is_internal_and_bodiless():
    text = (NGINX_DIR / "snippets" / "jwtgate-server.conf").read_text()
    block = text.split("location = /_jwtgate/verify {")[1].split("\n}")[0]
    assert "    internal;" in block
    assert "proxy_pass_request_body off;" in block
    assert 'proxy_set_header Content-Length "";' in block


_IDENTITY_HEADERS = ("X-User-Id", "X-User-Roles", "X-User-Scopes", "X-User-Email", "X-User-Tenant", "X-User-Claims",
                     "X-Jwtgate-Assertion")


def _directives(text, directive):
    """{first argument: rest} of every `directive` line of a snippet."""
    return dict(re.findall(rf"^{directive} (\S+) (.+);$", text, re.M))


def test_the_protected_location_forwards_each_identity_header_from_the_validators_answer_only():
    text = (NGINX_DIR / "snippets" / "jwtgate-protect.conf").read_text()
    headers, answers = _directives(text, "proxy_set_header"), _directives(text, "auth_request_set")
    for name in _IDENTITY_HEADERS:
        # X-User-Id comes from $jwtgate_user_id, which auth_request_set reads from the validator's
        # X-User-Id (never from the client's own copy, $http_x_user_id).
        variable = headers[name]
        assert re.fullmatch(r"\$jwtgate_[a-z_]+", variable), (name, variable)
        assert answers[variable] == "$upstream_http_" + name.lower().replace("-", "_"), name


def test_a_public_location_blanks_every_identity_header():
    headers = _directives((NGINX_DIR / "snippets" / "jwtgate-public.conf").read_text(), "proxy_set_header")
    for name in _IDENTITY_HEADERS:
        assert headers[name] == '""', name
