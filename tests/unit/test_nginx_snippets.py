"""The Nginx snippets agree with the validator, and the template renders like the nginx image's envsubst."""

import re
from pathlib import Path

import pytest

from launcher.stack import NGINX_DIR, render
from jwtgate.reasons import REASONS

pytestmark = pytest.mark.unit


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
    assert names <= set(stack.nginx_variables())


def test_verify_location_is_internal_and_bodiless():
    text = (NGINX_DIR / "snippets" / "jwtgate-server.conf").read_text()
    block = text.split("location = /_jwtgate/verify {")[1].split("\n}")[0]
    assert "    internal;" in block
    assert "proxy_pass_request_body off;" in block
    assert 'proxy_set_header Content-Length "";' in block


@pytest.mark.parametrize("snippet", ["jwtgate-protect.conf", "jwtgate-public.conf"])
def test_location_snippets_overwrite_every_identity_header(snippet):
    text = (NGINX_DIR / "snippets" / snippet).read_text()
    for name in ("X-User-Id", "X-User-Roles", "X-User-Scopes", "X-User-Email", "X-User-Tenant", "X-User-Claims"):
        assert re.search(rf"^proxy_set_header {name} ", text, re.M), name
