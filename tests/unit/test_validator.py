"""The validator in-process: every rule of /verify through Falcon's TestClient, with a fake clock."""

import asyncio
import base64
import json

import falcon.testing
import pytest

from tests.fakes import FakeJwksServer
from tests.minting import AUDIENCE, RsaSigner, b64, claims, header, hs256, rs256, unsigned
from validator.app import create_app
from validator.config import Settings, trusted_providers
from jwtgate.keys import JwksSource, StaticKeys, keys_from_jwks
from jwtgate import jose
from jwtgate.reasons import REASONS, TokenRejected


SECRET = b"s" * 40
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(scope="module")
def signer():
    return RsaSigner(kid="key-1")


@pytest.fixture(scope="module")
def other_signer():
    return RsaSigner(kid="key-2")


@pytest.fixture
def jwks(signer):
    return FakeJwksServer(signer)


@pytest.fixture
def keys(jwks, clock):
    source = JwksSource("http://auth/jwks", fetch=jwks, clock=clock, min_interval=5)
    asyncio.run(source.refresh())
    return source


@pytest.fixture
def settings():
    return Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate")


@pytest.fixture
def client(settings, keys, clock):
    return falcon.testing.TestClient(create_app(settings, keys=keys, clock=clock))


def verify(client, token=None, *, scheme="Bearer", headers=None):
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"{scheme} {token}"
    return client.simulate_get("/verify", headers=sent)


def assert_denied(result, reason):
    assert result.status_code == 401, result.headers
    assert result.headers["X-Auth-Error"] == reason
    assert "X-User-Id" not in result.headers
    error, description = REASONS[reason]
    assert result.headers["WWW-Authenticate"] == (
        'Bearer realm="jwtgate"' if error is None
        else f'Bearer realm="jwtgate", error="{error}", error_description="{description}"'
    )


def test_valid_token_passes_identity(client, signer, clock):
    result = verify(client, rs256(signer, claims(clock(), roles=["user", "admin"], scope="a:read b:write")))
    assert result.status_code == 200
    assert result.headers["X-User-Id"] == "alice"
    assert result.headers["X-User-Roles"] == "user,admin"
    assert result.headers["X-User-Scopes"] == "a:read,b:write"


def test_identity_headers_empty_when_claims_absent(client, signer, clock):
    result = verify(client, rs256(signer, claims(clock(), roles=None, scope=None)))
    assert result.status_code == 200
    assert result.headers["X-User-Roles"] == ""
    assert result.headers["X-User-Scopes"] == ""


def test_head_is_answered_like_get(client, signer, clock):
    token = rs256(signer, claims(clock()))
    assert client.simulate_head("/verify", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.simulate_head("/verify").status_code == 401


def test_no_token_is_a_challenge_without_error(client):
    assert_denied(verify(client), "missing_token")


def test_token_in_query_string_is_ignored(client, signer, clock):
    token = rs256(signer, claims(clock()))
    result = client.simulate_get("/verify", query_string=f"access_token={token}")
    assert_denied(result, "missing_token")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(client, signer, clock, scheme):
    assert verify(client, rs256(signer, claims(clock())), scheme=scheme).status_code == 200


@pytest.mark.parametrize("value", [
    "Basic YWxpY2U6c2VjcmV0",
    "Bearer",
    "Bearer ",
    "Token abc.def.ghi",
    "Bearer a.b.c d",
    "Bearer\ta.b.c",
    "Bearer a.b.c, Bearer d.e.f",
    "Bearer é.b.c",
])
def test_malformed_authorization_header_is_invalid_request(client, value):
    assert_denied(client.simulate_get("/verify", headers={"Authorization": value}), "invalid_request")


def test_two_authorization_headers_are_refused(client, signer, clock):
    token = rs256(signer, claims(clock()))
    result = client.simulate_get("/verify", headers=[("Authorization", f"Bearer {token}"),
                                                      ("Authorization", f"Bearer {token}")])
    assert_denied(result, "invalid_request")


def test_a_token_over_the_size_limit_is_refused(client, settings, signer, clock):
    token = rs256(signer, claims(clock(), padding="x" * settings.max_token_bytes))
    assert len(token) > settings.max_token_bytes == 8000
    assert_denied(verify(client, token), "invalid_request")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_refused(client, signer, clock, alg, signature):
    token = unsigned(header(signer, alg=alg), claims(clock()), signature)
    assert verify(client, token).status_code == 401


def test_tampered_claims_keep_no_signature(client, signer, clock):
    token = rs256(signer, claims(clock()))
    head, _, signature = token.split(".")
    forged = f"{head}.{b64(json.dumps(claims(clock(), sub='admin')))}.{signature}"
    assert_denied(verify(client, forged), "invalid_signature")


def test_rs256_public_key_as_hmac_secret_is_refused(client, signer, clock):
    token = hs256(signer.public_pem, claims(clock()), header(signer, alg="HS256"))
    assert_denied(verify(client, token), "unsupported_algorithm")


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "HS256", "RS256 ", "rs256"])
def test_kid_of_one_algorithm_with_another_is_refused(client, signer, clock, alg):
    token = unsigned(header(signer, alg=alg), claims(clock()), "c2ln")
    assert_denied(verify(client, token), "unsupported_algorithm")


@pytest.mark.parametrize("alg", [None, 1, True, ["RS256"], {"a": 1}, ""])
def test_alg_of_odd_json_type_is_refused(client, signer, clock, alg):
    head = header(signer)
    head["alg"] = alg
    assert verify(client, rs256(signer, claims(clock()), head)).status_code == 401


@pytest.mark.parametrize("member, value", [
    ("jwk", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
    ("jku", "http://127.0.0.1:9/jwks.json"),
    ("x5u", "http://127.0.0.1:9/cert.pem"),
    ("x5c", ["MIIB"]),
    ("crit", ["exp"]),
    ("b64", False),
    ("enc", "A128GCM"),
    ("zip", "DEF"),
    ("cty", "JWT"),
])
def test_header_members_we_do_not_understand_are_refused(client, signer, clock, member, value):
    token = rs256(signer, claims(clock()), header(signer, **{member: value}))
    assert_denied(verify(client, token), "unsupported_header")


def test_certificate_thumbprints_in_the_header_are_accepted_as_information(client, signer, clock):
    # RFC 7515 sections 4.1.7-4.1.8, as Entra ID sends them: never used to pick a key.
    thumbprints = {"x5t": "A" * 27, "x5t#S256": "B" * 43}
    assert verify(client, rs256(signer, claims(clock()), header(signer, **thumbprints))).status_code == 200
    assert_denied(verify(client, rs256(signer, claims(clock()), header(signer, kid=None, **thumbprints))),
                  "unknown_key")


@pytest.mark.parametrize("member, value", [
    ("x5t", "A" * 26), ("x5t", "A" * 28), ("x5t", "A" * 26 + "="), ("x5t", 7), ("x5t", {"a": 1}),
    ("x5t#S256", "B" * 42), ("x5t#S256", "B" * 42 + "+"), ("x5t#S256", ["B" * 43]),
])
def test_certificate_thumbprints_of_the_wrong_shape_are_refused(client, signer, clock, member, value):
    token = rs256(signer, claims(clock()), header(signer, **{member: value}))
    assert_denied(verify(client, token), "unsupported_header")


def test_a_header_seen_before_still_needs_valid_claims_and_signature(client, signer, clock):
    token = rs256(signer, claims(clock()))
    assert verify(client, token).status_code == 200
    head, body, signature = token.split(".")
    # The header is now known (decoded once, issue #6): everything after it is checked as before.
    forged = b64(json.dumps(claims(clock(), sub="mallory")).encode())
    assert_denied(verify(client, f"{head}.{forged}.{signature}"), "invalid_signature")
    assert_denied(verify(client, f"{head}.{b64(b'[]')}.{signature}"), "malformed")
    assert_denied(verify(client, f"{head}.{body}.{signature[:-1]}"), "malformed")
    assert_denied(verify(client, f"{head}.{body}"), "malformed")
    assert verify(client, token).status_code == 200


def test_a_refused_header_is_refused_every_time(client, signer, clock):
    for member, value, reason in (("jku", "http://127.0.0.1:9/jwks.json", "unsupported_header"),
                                  ("alg", "", "unsupported_algorithm"), ("kid", "a b", "unsupported_header")):
        token = rs256(signer, claims(clock()), header(signer, **{member: value}))
        for _ in range(3):
            assert_denied(verify(client, token), reason)
        assert token.split(".")[0] not in jose._KNOWN_HEADERS


def test_known_headers_are_bounded_and_decode_as_a_fresh_parse_would(signer, clock):
    for n in range(3 * jose._MAX_KNOWN_HEADERS):
        head = header(signer, kid=f"kid-{n}")
        token = rs256(signer, claims(clock()), head)
        for _ in range(2):
            assert jose.parse(token)[0] == head
        assert 0 < len(jose._KNOWN_HEADERS) <= jose._MAX_KNOWN_HEADERS
    assert token.split(".")[0] in jose._KNOWN_HEADERS


@pytest.mark.parametrize("kid", ["../../../../dev/null", "key-1' OR '1'='1", "key-1\x00", "", "k" * 200])
def test_kid_injection_never_finds_a_key(client, signer, clock, kid, jwks):
    token = rs256(signer, claims(clock()), header(signer, kid=kid))
    assert verify(client, token).status_code == 401


@pytest.mark.parametrize("kid", [7, None, ["key-1"]])
def test_kid_of_odd_type_is_refused(client, signer, clock, kid):
    head = header(signer)
    head["kid"] = kid
    assert_denied(verify(client, rs256(signer, claims(clock()), head)), "unsupported_header")


def test_encrypted_token_is_refused(client):
    assert_denied(verify(client, "eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn"), "malformed")


@pytest.mark.parametrize("mutate", [
    lambda t: t + "=",
    lambda t: t.replace(".", "=.", 1),
    lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "+",
    lambda t: t[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}.get(t[-1], "A"),
    lambda t: t + ".",
    lambda t: "." + t,
    lambda t: t.replace(".", "..", 1),
])
def test_alternative_spellings_of_a_valid_token_are_refused(client, signer, clock, mutate):
    token = rs256(signer, claims(clock()))
    assert verify(client, token).status_code == 200
    spelled = mutate(token)
    assert spelled != token
    assert verify(client, spelled).status_code == 401


def test_non_canonical_trailing_bits_are_refused(client, signer, clock):
    token = rs256(signer, claims(clock()))
    head, body, signature = token.split(".")
    # A 256-byte RSA signature is 342 base64url characters with 4 unused bits in the
    # last one: flipping one of those bits decodes to the same bytes.
    last = BASE64URL.index(signature[-1])
    twin = signature[:-1] + BASE64URL[last ^ 1]
    assert_denied(verify(client, f"{head}.{body}.{twin}"), "malformed")


@pytest.mark.parametrize("size", range(1, 67))
def test_a_segment_decodes_only_in_its_canonical_spelling(size):
    data = bytes((7 * index + size) % 256 for index in range(size))
    segment = b64(data)
    # Each character in last place: Python's lenient decoder gives some bytes for all of them; ours
    # gives the same bytes for the one canonical spelling of those bytes and refuses the others
    # (unused low bits set), so a token has one spelling and one cache key.
    for last in BASE64URL:
        spelled = segment[:-1] + last
        lenient = base64.urlsafe_b64decode(spelled + "=" * (-len(spelled) % 4))
        if b64(lenient) == spelled:
            assert jose.b64decode(spelled) == lenient
        else:
            with pytest.raises(TokenRejected):
                jose.b64decode(spelled)
    assert jose.b64decode(segment) == data


@pytest.mark.parametrize("segment", ["", "A", "QUJDR", "QQ==", "QUI=", "QUJD=", "Q+I", "Q/I", "Q I", "QU.I", "QUJ\n"])
def test_a_segment_of_impossible_length_padding_or_another_alphabet_is_refused(segment):
    with pytest.raises(TokenRejected):
        jose.b64decode(segment)


def test_duplicate_json_members_are_refused(client, signer, clock):
    body = json.dumps(claims(clock()))[:-1] + ', "sub": "admin"}'
    assert_denied(verify(client, rs256(signer, body)), "malformed")


@pytest.mark.parametrize("body", ["[]", '"text"', "1", "null", "{", '{"exp": NaN}', "[" * 600 + "]" * 600])
def test_claims_that_are_not_a_json_object_are_refused(client, signer, body):
    assert_denied(verify(client, rs256(signer, body)), "malformed")


def test_deeply_nested_claim_is_refused(client, signer, clock):
    body = json.dumps(claims(clock()))[:-1] + ', "deep": ' + "[" * 1500 + "]" * 1500 + "}"
    assert verify(client, rs256(signer, body)).status_code == 401


@pytest.mark.parametrize("value", ["1900000000", 1.9e9, 1900000000.5, True, None, [1900000000],
                                   {"t": 1}, 10**30, -1])
def test_exp_of_odd_type_is_refused(client, signer, clock, value):
    token = rs256(signer, claims(clock()) | {"exp": value})
    assert_denied(verify(client, token), "invalid_claims")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "jti"])
def test_every_required_claim_is_required(client, signer, clock, claim):
    assert_denied(verify(client, rs256(signer, claims(clock(), **{claim: None}))), "invalid_claims")


@pytest.mark.parametrize("sub", ["", "a b", "bob\r\nX-User-Id: admin", "bob\n", "jöhn", 42, ["alice"]])
def test_sub_must_be_header_safe(client, signer, clock, sub):
    assert_denied(verify(client, rs256(signer, claims(clock()) | {"sub": sub})), "invalid_claims")


@pytest.mark.parametrize("claim", ["jti", "sid"])
@pytest.mark.parametrize("value", ["", "a b", "j1\r\n", "jöti", 7, ["j1"]])
def test_jti_and_sid_must_be_visible_ascii(client, signer, clock, claim, value):
    assert_denied(verify(client, rs256(signer, claims(clock()) | {claim: value})), "invalid_claims")


@pytest.mark.parametrize("roles", ["admin", [1], [None], ["r"] * 65])
def test_roles_must_be_a_list_of_at_most_64_names(client, signer, clock, roles):
    assert_denied(verify(client, rs256(signer, claims(clock(), roles=roles))), "invalid_claims")


@pytest.mark.parametrize("roles", [["admin,root"], ["a b"], ["x\r\nX-User-Id: root"], [""], ["röot"]])
def test_a_role_name_no_header_can_carry_is_left_out(client, signer, clock, roles):
    result = verify(client, rs256(signer, claims(clock(), roles=roles + ["user"])))
    assert result.status_code == 200
    assert result.headers["X-User-Roles"] == "user"
    assert result.headers["X-User-Id"] == "alice"


@pytest.mark.parametrize("scope", [["a"], 7, {"a": 1}])
def test_scope_must_be_one_string(client, signer, clock, scope):
    assert_denied(verify(client, rs256(signer, claims(clock(), scope=scope))), "invalid_claims")


@pytest.mark.parametrize("scope", ["a,b read", "read  x\r\nb", " read", "read\t"])
def test_a_scope_no_header_can_carry_is_left_out(client, signer, clock, scope):
    result = verify(client, rs256(signer, claims(clock(), scope=scope)))
    assert result.status_code == 200
    assert result.headers["X-User-Scopes"] == ("read" if scope != "read\t" else "")


def test_expired_token_within_leeway_passes_then_fails(client, signer, clock):
    token = rs256(signer, claims(clock(), iat=int(clock()) - 100, exp=int(clock()) - 10))
    assert verify(client, token).status_code == 200
    clock.tick(25)
    assert_denied(verify(client, token), "expired")


def test_expired_beyond_leeway_is_refused(client, signer, clock):
    token = rs256(signer, claims(clock(), iat=int(clock()) - 100, exp=int(clock()) - 31))
    assert_denied(verify(client, token), "expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_token_from_the_future_is_refused(client, signer, clock, claim):
    token = rs256(signer, claims(clock(), **{claim: int(clock()) + 120, "exp": int(clock()) + 900}))
    assert_denied(verify(client, token), "not_yet_valid")
    clock.tick(100)
    assert verify(client, token).status_code == 200


def test_leeway_is_configurable(keys, signer, clock):
    strict = falcon.testing.TestClient(
        create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                            leeway_seconds=0), keys=keys, clock=clock))
    token = rs256(signer, claims(clock(), iat=int(clock()) - 100, exp=int(clock()) - 1))
    assert_denied(verify(strict, token), "expired")


@pytest.mark.parametrize("overrides, reason", [
    ({"iss": "https://evil.example"}, "wrong_issuer"),
    ({"iss": ["jwtgate"]}, "wrong_issuer"),
    ({"aud": "another-api"}, "wrong_audience"),
    ({"aud": [AUDIENCE]}, "wrong_audience"),
    ({"aud": [AUDIENCE, "another-api"]}, "wrong_audience"),
])
def test_issuer_and_audience_must_match(client, signer, clock, overrides, reason):
    assert_denied(verify(client, rs256(signer, claims(clock(), **overrides))), reason)


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "refresh+jwt", "at+jwt ", 1])
def test_only_access_tokens_are_accepted(client, signer, clock, typ):
    assert_denied(verify(client, rs256(signer, claims(clock()), header(signer, typ=typ))), "wrong_type")


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_access_token_type_spellings(client, signer, clock, typ):
    assert verify(client, rs256(signer, claims(clock()), header(signer, typ=typ))).status_code == 200


@pytest.mark.parametrize("claim", ["token_use", "token_type", "type", "typ"])
@pytest.mark.parametrize("value", ["refresh", "id", "Refresh", "ID", "REFRESH_TOKEN", "id_token", "refresh-token",
                                   "Id Token", "offline", "refresh+jwt", " refresh ",
                                   "urn:ietf:params:oauth:token-type:refresh_token",
                                   "urn:ietf:params:oauth:token-type:id_token", 1, True, ["access"], {"use": "access"}])
def test_a_token_whose_claims_say_it_is_no_access_token_is_refused(client, signer, clock, claim, value):
    # Whatever the header's typ says (at+jwt here).
    assert_denied(verify(client, rs256(signer, claims(clock(), **{claim: value}))), "wrong_type")


@pytest.mark.parametrize(("claim", "value"), [("token_use", "access"), ("token_type", "access_token"),
                                              ("token_type", "urn:ietf:params:oauth:token-type:access_token"),
                                              ("typ", "Bearer"), ("type", "identity"), ("type", "refreshment")])
def test_a_token_whose_claims_say_access_or_something_else_passes(client, signer, clock, claim, value):
    assert verify(client, rs256(signer, claims(clock(), **{claim: value}))).status_code == 200


def test_token_signed_by_another_key_with_our_kid_is_refused(client, signer, clock):
    impostor = RsaSigner(kid=signer.kid)
    assert_denied(verify(client, rs256(impostor, claims(clock()))), "invalid_signature")


def test_unknown_kid_refetches_the_jwks_once(client, jwks, other_signer, clock):
    token = rs256(other_signer, claims(clock()))
    assert_denied(verify(client, token), "unknown_key")
    assert jwks.fetches == 1
    clock.tick(6)
    jwks.document["keys"].append(other_signer.jwk)
    assert verify(client, token).status_code == 200
    assert jwks.fetches == 2


def test_unknown_kid_refetches_the_jwks_within_one_app_startup(settings, jwks, signer, other_signer, clock):
    # One startup for the whole test: TestClient would run the startup's key refresh before each request,
    # so a resource that never refetched would pass.
    async def scenario():
        keys = JwksSource("http://auth/jwks", fetch=jwks, clock=clock, min_interval=5)
        async with falcon.testing.ASGIConductor(create_app(settings, keys=keys, clock=clock)) as conductor:
            async def status(token):
                result = await conductor.simulate_get("/verify", headers={"Authorization": f"Bearer {token}"})
                return result.status_code, result.headers.get("X-Auth-Error")

            token = rs256(other_signer, claims(clock()))
            assert await status(rs256(signer, claims(clock()))) == (200, None)
            assert await status(token) == (401, "unknown_key")
            assert jwks.fetches == 1
            jwks.document["keys"].append(other_signer.jwk)
            clock.tick(6)
            assert await status(token) == (200, None)
            assert jwks.fetches == 2
            assert await status(rs256(other_signer, claims(clock()))) == (200, None)
            assert jwks.fetches == 2

    asyncio.run(scenario())


def test_unknown_kid_flood_is_rate_limited(client, jwks, signer, clock):
    for number in range(50):
        verify(client, rs256(signer, claims(clock()), header(signer, kid=f"random-{number}")))
    assert jwks.fetches == 1
    clock.tick(6)
    verify(client, rs256(signer, claims(clock()), header(signer, kid="random-x")))
    assert jwks.fetches == 2


def test_failed_jwks_fetch_keeps_the_last_good_keys(client, jwks, signer, clock):
    jwks.fail = True
    clock.tick(6)
    verify(client, rs256(signer, claims(clock()), header(signer, kid="unknown")))
    assert jwks.fetches == 2
    assert verify(client, rs256(signer, claims(clock()))).status_code == 200


def test_kid_removed_from_jwks_stops_validating(client, jwks, signer, other_signer, clock):
    jwks.document = {"keys": [other_signer.jwk]}
    clock.tick(6)
    assert verify(client, rs256(other_signer, claims(clock()))).status_code == 200
    assert_denied(verify(client, rs256(signer, claims(clock(), jti="fresh"))), "unknown_key")


def test_missing_kid_is_refused_without_a_fetch(client, jwks, signer, clock):
    assert_denied(verify(client, rs256(signer, claims(clock()), header(signer, kid=None))), "unknown_key")
    assert jwks.fetches == 1


def test_jwks_members_that_must_not_be_trusted_are_skipped(signer):
    weak = RsaSigner(kid="weak", bits=1024)
    private = dict(signer.jwk, kid="private", d="AQAB")
    symmetric = {"kty": "oct", "kid": "oct", "k": b64(SECRET)}
    encryption = dict(signer.jwk, kid="enc", use="enc")
    odd_alg = dict(signer.jwk, kid="odd", alg="HS256")
    keys, problems = keys_from_jwks({"keys": [weak.jwk, private, symmetric, encryption, odd_alg, signer.jwk,
                                              signer.jwk, "junk", {"kid": "no-kty"}]})
    assert list(keys) == [signer.kid]
    assert len(problems) == 8
    assert all("AQAB" not in problem for problem in problems)


def test_cache_entry_never_outlives_exp(client, signer, clock):
    token = rs256(signer, claims(clock(), exp=int(clock()) + 60))
    assert verify(client, token).status_code == 200
    clock.tick(61 + 30)
    assert_denied(verify(client, token), "expired")


def test_cache_hit_is_exact_token_only(client, signer, clock):
    token = rs256(signer, claims(clock()))
    assert verify(client, token).status_code == 200
    head, body, signature = token.split(".")
    other_body = b64(json.dumps(claims(clock(), sub="mallory")))
    assert_denied(verify(client, f"{head}.{other_body}.{signature}"), "invalid_signature")
    impostor = rs256(RsaSigner(kid=signer.kid), json.loads(__import__("base64").urlsafe_b64decode(body + "==")))
    assert_denied(verify(client, impostor), "invalid_signature")


def test_a_cached_verdict_goes_with_the_key_that_verified_it(settings, jwks, signer, other_signer, clock):
    # A key pulled from the JWKS (retired, or compromised) stops validating at the next refresh, cached
    # verdicts included.
    jwks.document = {"keys": [signer.jwk, other_signer.jwk]}
    keys = JwksSource("http://auth/jwks", fetch=jwks, clock=clock)
    asyncio.run(keys.refresh())
    client = falcon.testing.TestClient(create_app(settings, keys=keys, clock=clock))
    token, other = rs256(signer, claims(clock())), rs256(other_signer, claims(clock()))
    assert verify(client, token).status_code == verify(client, other).status_code == 200
    jwks.document = {"keys": [other_signer.jwk]}
    asyncio.run(keys.refresh(force=True))
    assert len(keys) == 1
    assert_denied(verify(client, token), "unknown_key")
    assert verify(client, other).status_code == 200


def test_a_refresh_reports_a_key_leaving_and_nothing_else(jwks, signer, other_signer, clock):
    keys = JwksSource("http://auth/jwks", fetch=jwks, clock=clock)
    retirements = []
    keys.on_retire(lambda: retirements.append(len(keys)))
    steps = [
        ({"keys": [signer.jwk]}, []),                                   # the first load
        ({"keys": [signer.jwk]}, []),                                   # unchanged
        ({"keys": [other_signer.jwk, dict(reversed(signer.jwk.items()))]}, []),   # one added, members reordered
        (None, []),                                                     # fetch failed: keys kept
        ({"keys": [signer.jwk]}, [1]),                                  # other_signer's key pulled
        ({"keys": [RsaSigner(kid=signer.kid).jwk]}, [1, 1]),            # other material under a held kid
    ]
    for document, expected in steps:
        jwks.fail = document is None
        if document is not None:
            jwks.document = document
        asyncio.run(keys.refresh(force=True))
        assert retirements == expected, document


def test_other_key_material_under_a_held_kid_drops_its_verdicts(settings, jwks, signer, clock):
    keys = JwksSource("http://auth/jwks", fetch=jwks, clock=clock)
    asyncio.run(keys.refresh())
    client = falcon.testing.TestClient(create_app(settings, keys=keys, clock=clock))
    token = rs256(signer, claims(clock()))
    assert verify(client, token).status_code == 200
    jwks.document = {"keys": [RsaSigner(kid=signer.kid).jwk]}
    asyncio.run(keys.refresh(force=True))
    assert_denied(verify(client, token), "invalid_signature")


def test_cache_respects_max_ttl(jwks, signer, clock):
    keys = JwksSource("http://auth/jwks", fetch=jwks, clock=clock)
    asyncio.run(keys.refresh())
    client = falcon.testing.TestClient(
        create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                            cache_max_ttl_seconds=10), keys=keys, clock=clock))
    token = rs256(signer, claims(clock()))
    assert verify(client, token).status_code == 200
    jwks.document = {"keys": []}
    clock.tick(11)
    assert_denied(verify(client, token), "unknown_key")


class ExplodingKeys:
    """A key source whose lookups fail: the validator must still refuse, not crash."""

    def get(self, kid):
        raise RuntimeError("store unavailable")

    def __len__(self):
        return 0

    def on_retire(self, callback):
        return None

    async def refresh(self):
        return None

    async def run(self, interval):
        return None


def test_internal_error_fails_closed(settings, signer, clock):
    client = falcon.testing.TestClient(create_app(settings, keys=ExplodingKeys(), clock=clock))
    assert_denied(verify(client, rs256(signer, claims(clock()))), "internal_error")


def test_hs256_mode(clock, signer):
    client = falcon.testing.TestClient(
        create_app(Settings(hs256_secret=SECRET, provider_preset="jwtgate"), keys=StaticKeys(SECRET), clock=clock))
    assert verify(client, hs256(SECRET, claims(clock()))).status_code == 200
    assert_denied(verify(client, hs256(b"t" * 40, claims(clock()))), "invalid_signature")
    assert_denied(verify(client, hs256(b"", claims(clock()))), "invalid_signature")
    assert_denied(verify(client, rs256(signer, claims(clock()), header(signer, kid=None))), "unsupported_algorithm")
    assert_denied(verify(client, hs256(SECRET, claims(clock()), {"alg": "HS512", "typ": "at+jwt"})),
                  "unsupported_algorithm")


def test_healthz_reports_keys(client):
    result = client.simulate_get("/healthz")
    assert result.status_code == 200
    assert result.json == {"status": "ok", "keys": 1}


def test_config_names_every_bad_setting():
    from jwtgate.settings import ConfigError

    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"VALIDATOR_LEEWAY_SECONDS": "soon", "VALIDATOR_CACHE_SIZE": "-1",
                           "VALIDATOR_REALM": 'a"b', "VALIDATOR_LOG_LEVEL": "loud"})
    message = str(raised.value)
    for name in ("VALIDATOR_ISSUER", "VALIDATOR_LEEWAY_SECONDS", "VALIDATOR_CACHE_SIZE",
                 "VALIDATOR_REALM", "VALIDATOR_LOG_LEVEL"):
        assert name in message
    assert message.startswith("invalid configuration:")


@pytest.mark.parametrize("environ, setting", [
    ({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", "VALIDATOR_HS256_SECRET": "s" * 40}, "VALIDATOR_HS256_SECRET"),
    ({"VALIDATOR_HS256_SECRET": "short"}, "VALIDATOR_HS256_SECRET"),
    ({"VALIDATOR_JWKS_URL": "ftp://a/jwks"}, "VALIDATOR_JWKS_URL"),
    ({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks", "VALIDATOR_ACCEPTED_TYP": " "}, "VALIDATOR_ACCEPTED_TYP"),
    ({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks",
      "VALIDATOR_DPOP_NONCE_SECONDS": "5"}, "VALIDATOR_DPOP_NONCE_SECONDS"),
    ({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks",
      "VALIDATOR_DPOP_NONCE_SECONDS": "3601"}, "VALIDATOR_DPOP_NONCE_SECONDS"),
    ({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks",
      "VALIDATOR_DPOP_NONCE_SECRET": "short"}, "VALIDATOR_DPOP_NONCE_SECRET"),
])
def test_key_settings_are_checked(environ, setting):
    from jwtgate.settings import ConfigError

    with pytest.raises(ConfigError, match=setting):
        Settings.from_env(environ)


def test_defaults_from_env():
    settings = Settings.from_env({"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks"})
    assert settings.leeway_seconds == 30
    (provider,) = trusted_providers(settings)
    assert provider.accepted_typ == ("at+jwt",) and provider.required_claims == ("exp", "iat", "sub", "iss")
    assert settings.hs256_secret is None
    assert settings.dpop_nonce_seconds == 0 and settings.dpop_nonce_secret is None


def test_secret_is_not_in_settings_repr():
    assert "sss" not in repr(Settings(hs256_secret=SECRET, provider_preset="jwtgate"))
    assert "sss" not in repr(Settings(dpop_nonce_secret=SECRET))
