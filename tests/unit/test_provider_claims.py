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


@pytest.mark.parametrize("roles", [["a,b"], ["a b"], "admin", [1], {"x": 1}, [["a"]]])
def test_roles_at_a_path_keep_the_strict_name_rules(roles):
    refused(BASE | {"realm_access": {"roles": roles}}, "invalid_claims", roles=("realm_access.roles",))


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
