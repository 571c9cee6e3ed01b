"""Claim checks for other providers' token shapes: audiences, claim rules, claim paths, optional jti."""

import pytest

from jwtgate.claims import OWN_TOKEN_CLAIMS, Policy, check_claims, claim_at
from jwtgate.reasons import TokenRejected

NOW = 1_800_000_000
BASE = {"iss": "https://idp.example/", "sub": "user-1", "aud": "api", "iat": NOW - 10, "exp": NOW + 300}


def policy(**fields):
    return Policy(**({"issuer": "https://idp.example/", "audiences": ("api", "other"), "accepted_typ": ("at+jwt",),
                      "leeway_seconds": 0} | fields))


def check(claims, **fields):
    return check_claims(claims, policy(**fields), NOW)


def refused(claims, reason, **fields):
    with pytest.raises(TokenRejected) as raised:
        check(claims, **fields)
    assert raised.value.reason == reason


def test_the_generic_provider_needs_no_jti_and_keeps_none():
    identity = check(BASE)
    assert identity.sub == "user-1" and identity.jti is None and identity.ids() == ["user-1", None, None]


@pytest.mark.parametrize("aud", ["api", ["https://idp.example/userinfo", "api"], ["other"]])
def test_an_audience_string_or_an_array_holding_one_of_ours_passes(aud):
    assert check(BASE | {"aud": aud}).sub == "user-1"


@pytest.mark.parametrize("aud", ["API", ["x", "y"], [], ["api", 5], [["api"]], {"api": 1}, 7, None, "api "])
def test_an_audience_not_ours_or_oddly_typed_is_refused(aud):
    refused(BASE | {"aud": aud}, "wrong_audience")


def test_a_missing_audience_is_refused_even_when_not_required():
    refused({key: value for key, value in BASE.items() if key != "aud"}, "wrong_audience")


def test_exact_audience_refuses_an_array_holding_ours():
    refused(BASE | {"aud": ["api"]}, "wrong_audience", exact_audience=True)
    assert check(BASE, exact_audience=True).sub == "user-1"


def test_cognito_names_its_client_in_client_id():
    claims = {key: value for key, value in BASE.items() if key != "aud"} | {"client_id": "api", "token_use": "access"}
    assert check(claims, audience_claim="client_id", claim_rules=(("token_use", ("access",)),)).sub == "user-1"
    refused(claims | {"token_use": "id"}, "wrong_type", audience_claim="client_id",
            claim_rules=(("token_use", ("access",)),))
    refused(claims | {"token_use": "other"}, "invalid_claims", audience_claim="client_id",
            claim_rules=(("token_use", ("access",)),))
    refused(claims | {"client_id": "stranger"}, "wrong_audience", audience_claim="client_id")


@pytest.mark.parametrize("value, holds", [("2.0", True), ("1.0", False), (2, False), (True, False), (["2.0"], False),
                                          (None, False)])
def test_a_claim_rule_holds_only_for_an_allowed_value(value, holds):
    claims = BASE | {"ver": value}
    rules = (("ver", ("2.0",)),)
    if holds:
        assert check(claims, claim_rules=rules).sub == "user-1"
    else:
        refused(claims, "invalid_claims", claim_rules=rules)


def test_an_integer_claim_compares_as_its_text():
    assert check(BASE | {"ver": 1}, claim_rules=(("ver", ("1",)),)).sub == "user-1"


def test_a_claim_rule_on_an_absent_claim_refuses():
    refused(BASE, "invalid_claims", claim_rules=(("azp", ("web",)),))


def test_roles_come_from_every_configured_path_in_order():
    claims = BASE | {"realm_access": {"roles": ["user", "admin"]}, "resource_access": {"api": {"roles": ["editor"]}}}
    identity = check(claims, roles=("realm_access.roles", "resource_access.api.roles", "absent.path"))
    assert identity.roles == ("user", "admin", "editor")


def test_a_claim_name_holding_dots_is_read_whole_before_it_is_split():
    claims = BASE | {"https://app.example/roles": ["admin"], "cognito:groups": ["ops"]}
    assert check(claims, roles=("https://app.example/roles", "cognito:groups")).roles == ("admin", "ops")
    assert claim_at({"a": {"b": 1}}, "a.b") == 1
    assert claim_at({"a.b": 2, "a": {"b": 1}}, "a.b") == 2


@pytest.mark.parametrize("scp, scopes", [("read write", ("read", "write")), (["read", "write"], ("read", "write")),
                                         ("", ())])
def test_scopes_come_from_a_string_or_an_array_under_other_names(scp, scopes):
    assert check(BASE | {"scp": scp}, scopes=("scp",)).scopes == scopes


def test_the_scope_claim_itself_must_be_a_string():
    refused(BASE | {"scope": ["read"]}, "invalid_claims")


@pytest.mark.parametrize("roles", ["admin", [1], {"x": 1}, [["a"]], ["admin", None], ["admin", True]])
def test_roles_at_a_path_must_be_a_list_of_strings(roles):
    refused(BASE | {"realm_access": {"roles": roles}}, "invalid_claims", roles=("realm_access.roles",))


def test_names_that_cannot_travel_in_a_header_are_left_out_and_the_rest_kept():
    # An Okta group "Sales Team" must not refuse a user's every request, nor reach the backend as
    # two names ("a,b") or a header of its own (CR LF).
    roles = ["Sales Team", "admin", "a,b", "x\r\nX-User-Id: root", "é", "", "a" * 65, "ops"]
    assert check(BASE | {"groups": roles}, roles=("groups",)).roles == ("admin", "ops")
    assert check(BASE | {"scope": "read  a,b write\tx  "}).scopes == ("read",)


@pytest.mark.parametrize("path", ["roles", "scope"])
def test_a_role_or_scope_claim_lists_at_most_256_entries_kept_or_not(path):
    listed = ["a,b"] * 255 + ["admin"]
    value = listed if path == "roles" else " ".join(listed)
    assert getattr(check(BASE | {path: value}), "roles" if path == "roles" else "scopes") == ("admin",)
    more = listed + ["a,b"]
    refused(BASE | {path: more if path == "roles" else " ".join(more)}, "invalid_claims")


def test_roles_over_the_bound_across_paths_are_refused():
    claims = BASE | {"a": [f"r{i}" for i in range(40)], "b": [f"s{i}" for i in range(40)]}
    refused(claims, "invalid_claims", roles=("a", "b"))


def test_a_token_without_iat_counts_as_issued_at_zero():
    claims = {key: value for key, value in BASE.items() if key != "iat"}
    assert check(claims, required_claims=frozenset({"exp", "sub", "iss"})).iat == 0


def test_our_own_tokens_still_need_every_claim():
    refused(BASE, "invalid_claims", required_claims=OWN_TOKEN_CLAIMS)
    assert check(BASE | {"jti": "j-1"}, required_claims=OWN_TOKEN_CLAIMS).jti == "j-1"


@pytest.mark.parametrize("jti", ["", 5, None, ["a"], "a b"])
def test_a_jti_present_must_be_valid_even_when_optional(jti):
    refused(BASE | {"jti": jti}, "invalid_claims")


def test_the_identity_names_its_provider():
    assert check(BASE, provider="keycloak").provider == "keycloak"


def test_mapped_header_claims_follow_paths_too():
    identity = check(BASE | {"org": {"tenant": "acme"}}, extra_claims=("org.tenant",))
    assert identity.values("org.tenant") == ("acme",)


def mapped(value):
    return check(BASE | {"tenant": value}, extra_claims=("tenant",)).values("tenant")


def test_a_mapped_scalar_claim_is_one_header_value_not_its_characters():
    assert mapped("acme") == ("acme",)
    assert mapped(7) == ("7",)
    assert mapped(["acme", 7]) == ("acme", "7")


@pytest.mark.parametrize("value", [True, False, None, 1.5, {"a": 1}, [1.5], [True], [["a"]], [{"a": 1}]])
def test_a_mapped_claim_that_is_no_string_or_integer_refuses_the_token(value):
    refused(BASE | {"tenant": value}, "invalid_claims", extra_claims=("tenant",))


@pytest.mark.parametrize("value", ["a,b", ["a,b"], "é", " acme", "acme ", "", "a" * 257, "a\x7f", "a\x1f", "a\x1fb",
                                   "a\tb", "a\n"])
def test_a_mapped_claim_value_that_is_not_header_safe_refuses_the_token(value):
    refused(BASE | {"tenant": value}, "invalid_claims", extra_claims=("tenant",))


def test_a_mapped_claim_value_may_be_any_printable_ascii_but_a_comma_up_to_256_characters():
    printable = "".join(chr(code) for code in range(0x21, 0x7f) if chr(code) != ",")
    assert mapped(printable) == (printable,)
    assert mapped("a b+c-d") == ("a b+c-d",)
    assert mapped("a" * 256) == ("a" * 256,)


def test_a_mapped_claim_holds_at_most_64_values():
    assert len(mapped([f"v{number}" for number in range(64)])) == 64
    assert mapped([]) == ()
    refused(BASE | {"tenant": [f"v{number}" for number in range(65)]}, "invalid_claims", extra_claims=("tenant",))


def test_an_absent_mapped_claim_gives_no_values():
    identity = check(BASE, extra_claims=("tenant",))
    assert identity.extra == () and identity.values("tenant") == ()


@pytest.mark.parametrize("leeway", [0, 30])
def test_a_token_expires_exactly_at_exp_plus_leeway(leeway):
    early = BASE | {"iat": NOW - 100}
    assert check(early | {"exp": NOW - leeway + 1}, leeway_seconds=leeway).sub == "user-1"
    refused(early | {"exp": NOW - leeway}, "expired", leeway_seconds=leeway)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
@pytest.mark.parametrize("leeway", [0, 30])
def test_a_token_becomes_valid_exactly_at_iat_or_nbf_minus_leeway(claim, leeway):
    late = BASE | {"exp": NOW + 600}
    assert check(late | {claim: NOW + leeway}, leeway_seconds=leeway).sub == "user-1"
    refused(late | {claim: NOW + leeway + 1}, "not_yet_valid", leeway_seconds=leeway)


def test_an_nbf_in_the_past_passes():
    assert check(BASE | {"nbf": NOW - 5}).sub == "user-1"


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [-1, 253_402_300_800, 1.0, "1", True, None])
def test_a_numeric_date_outside_0_to_the_year_9999_or_not_an_integer_is_refused(claim, value):
    refused(BASE | {claim: value}, "invalid_claims")


def test_numeric_dates_of_0_and_the_last_second_of_9999_are_accepted():
    identity = check(BASE | {"iat": 0, "nbf": 0, "exp": 253_402_300_799})
    assert (identity.iat, identity.exp) == (0, 253_402_300_799)


def test_a_token_whose_exp_is_not_after_its_iat_is_refused():
    refused(BASE | {"iat": NOW - 10, "exp": NOW - 10}, "invalid_claims", leeway_seconds=60)
    assert check(BASE | {"iat": NOW - 10, "exp": NOW - 9}, leeway_seconds=60).exp == NOW - 9


def test_a_token_holds_at_most_64_claims():
    padding = {f"c{number}": 0 for number in range(64 - len(BASE))}
    assert check(BASE | padding).sub == "user-1"
    refused(BASE | padding | {"one_more": 0}, "invalid_claims")


@pytest.mark.parametrize("path", ["roles", "scope"])
def test_roles_and_scopes_hold_at_most_64_names(path):
    names = [f"n{number}" for number in range(64)]
    value = names if path == "roles" else " ".join(names)
    assert len(getattr(check(BASE | {path: value}), "roles" if path == "roles" else "scopes")) == 64
    more = names + ["n64"]
    refused(BASE | {path: more if path == "roles" else " ".join(more)}, "invalid_claims")


def test_names_across_paths_may_total_64():
    claims = BASE | {"a": [f"r{i}" for i in range(32)], "b": [f"s{i}" for i in range(32)]}
    assert len(check(claims, roles=("a", "b")).roles) == 64


def test_a_path_the_token_lacks_does_not_hide_the_paths_after_it():
    # Keycloak realm roles, then client roles: a user with client roles only still has them.
    paths = ("realm_access.roles", "resource_access.api.roles")
    claims = BASE | {"resource_access": {"api": {"roles": ["reader"]}}}
    assert check(claims, roles=paths).roles == ("reader",)
    assert check(claims | {"realm_access": {"roles": ["user"]}}, roles=paths).roles == ("user", "reader")


@pytest.mark.parametrize("name, passes", [("a" * 64, True), ("a" * 65, False), ("", False),
                                          ("Az09._:/@-", True), ("a+b", False), ("a,b", False), ("a\tb", False),
                                          ("é", False), ("a#b", False)])
def test_a_role_is_1_to_64_of_letters_digits_and_a_few_separators(name, passes):
    assert check(BASE | {"roles": [name, "kept"]}).roles == ((name, "kept") if passes else ("kept",))


@pytest.mark.parametrize("sub, passes", [("a" * 255, True), ("a" * 256, False), ("!~", True), ("a\x7f", False),
                                         ("é", False), ("", False)])
def test_sub_is_1_to_255_visible_ascii_characters(sub, passes):
    if passes:
        assert check(BASE | {"sub": sub}).sub == sub
    else:
        refused(BASE | {"sub": sub}, "invalid_claims")


@pytest.mark.parametrize("jkt, passes", [("A" * 43, True), ("a-_0" + "A" * 39, True), ("A" * 42, False),
                                         ("A" * 44, False), ("+" * 43, False), ("=" + "A" * 42, False)])
def test_a_dpop_binding_is_one_sha256_thumbprint(jkt, passes):
    if passes:
        assert check(BASE | {"cnf": {"jkt": jkt}}).jkt == jkt
    else:
        refused(BASE | {"cnf": {"jkt": jkt}}, "invalid_claims")


@pytest.mark.parametrize("cnf", [{"x5t#S256": "A" * 43}, {"jkt": "A" * 43, "x5t#S256": "A" * 43}, {"jkt": 1},
                                 ["A" * 43], "A" * 43])
def test_a_confirmation_other_than_one_jkt_is_refused(cnf):
    refused(BASE | {"cnf": cnf}, "invalid_claims")


def test_a_token_without_confirmation_is_a_bearer_token():
    assert check(BASE).jkt is None


@pytest.mark.parametrize("claim", ["token_use", "token_type", "type", "typ"])
@pytest.mark.parametrize("value", ["refresh", "ID", "offline", "refresh_token", "id-token", "id token", "idtoken",
                                   "Refresh_Token+jwt", "urn:ietf:params:oauth:token-type:refresh_token",
                                   "urn:ietf:params:oauth:token-type:id_token", " id ", 1, None, ["access"]])
def test_a_type_claim_naming_another_kind_of_token_is_wrong_type(claim, value):
    refused(BASE | {claim: value}, "wrong_type")


@pytest.mark.parametrize("value", ["access", "at+jwt", "Bearer", "refreshed", "identity", "id__token", "id_tokens",
                                   "urn:ietf:params:oauth:token-type:access_token", "token"])
def test_a_type_claim_naming_an_access_token_or_something_unknown_passes(value):
    assert check(BASE | {"token_use": value}).sub == "user-1"


def test_the_issuer_must_be_the_policys_exactly():
    for iss in ("https://idp.example", "https://IDP.example/", None, 1):
        refused(BASE | {"iss": iss}, "wrong_issuer")


def test_our_own_token_claims_are_the_six_our_auth_api_writes():
    assert OWN_TOKEN_CLAIMS == {"exp", "iat", "sub", "iss", "aud", "jti"}
    complete = BASE | {"jti": "j"}
    for name in OWN_TOKEN_CLAIMS - {"iss", "aud"}:
        refused({key: value for key, value in complete.items() if key != name}, "invalid_claims",
                required_claims=OWN_TOKEN_CLAIMS)


def test_an_audience_array_holds_1_to_64_strings():
    assert check(BASE | {"aud": [f"x{i}" for i in range(63)] + ["api"]}).sub == "user-1"
    refused(BASE | {"aud": [f"x{i}" for i in range(64)] + ["api"]}, "wrong_audience")


@pytest.mark.parametrize("value", [True, None, ["a"], {"a": 1}, 1.0])
def test_a_claim_rule_never_compares_a_boolean_null_array_object_or_float_as_its_text(value):
    rules = (("ver", ("True", "None", "['a']", "{'a': 1}", "1.0")),)
    refused(BASE | {"ver": value}, "invalid_claims", claim_rules=rules)


def test_sub_is_needed_even_where_the_policy_does_not_list_it():
    without_sub = {key: value for key, value in BASE.items() if key != "sub"}
    refused(without_sub, "invalid_claims", required_claims=frozenset({"exp", "iss"}))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss"])
def test_a_policy_requires_exp_iat_sub_and_iss_unless_told_otherwise(claim):
    refused({key: value for key, value in BASE.items() if key != claim}, "invalid_claims")
