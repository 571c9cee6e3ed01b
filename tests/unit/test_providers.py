"""Provider entries: presets fill what an entry leaves out, and every bad field is named."""

import re
import tomllib
from pathlib import Path

import pytest

from validator.providers import PRESETS, ProblemList, build, load_document, load_file


def _one(entry, name="idp", **kwargs):
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    return build(name, entry, problems, **kwargs), [why for _, why in problems.items]


def test_a_minimal_entry_takes_the_generic_defaults_and_discovery():
    provider, problems = _one({"issuer": "https://idp.example/", "audiences": "api"})
    assert problems == []
    assert provider.audiences == ("api",)
    assert provider.discovery and provider.jwks_uri is None
    assert provider.required_claims == ("exp", "iat", "sub", "iss")
    assert provider.accepted_typ == ("at+jwt",)
    assert not provider.exact_audience
    # Fail closed by default: the revocation store speaks for a provider until its entry says otherwise.
    assert provider.revocations


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_a_provider(preset):
    provider, problems = _one({"preset": preset, "issuer": "https://idp.example/", "audiences": ["a", "b"]})
    assert problems == []
    assert provider.audiences == ("a", "b")
    assert {"exp", "iss"} <= set(provider.required_claims)


def test_presets_carry_each_vendors_token_shape():
    cognito, _ = _one({"preset": "cognito", "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x",
                       "audiences": "client"})
    assert cognito.audience_claim == "client_id"
    assert cognito.claim_rules == (("token_use", ("access",)),)
    assert cognito.accepted_typ == ("",)
    keycloak, _ = _one({"preset": "keycloak", "issuer": "https://kc.example/realms/acme", "audiences": "api"})
    assert keycloak.roles == ("realm_access.roles",)
    assert ("typ", ("Bearer", "DPoP")) in keycloak.claim_rules
    entra, _ = _one({"preset": "entra", "issuer": "https://login.microsoftonline.com/t/v2.0", "audiences": "api"})
    assert entra.scopes == ("scp",) and "azp" in entra.required_claims


def test_an_entry_overrides_its_preset():
    provider, problems = _one({"preset": "keycloak", "issuer": "https://kc.example/realms/a", "audiences": "api",
                               "roles": ["resource_access.api.roles"], "accepted_typ": ["at+jwt"]})
    assert problems == []
    assert provider.roles == ("resource_access.api.roles",)
    assert provider.accepted_typ == ("at+jwt",)


def test_accepted_typ_is_lower_case_without_the_application_prefix():
    provider, _ = _one({"issuer": "https://i.example", "audiences": "a", "accepted_typ": ["application/AT+JWT", ""]})
    assert provider.accepted_typ == ("at+jwt", "")


@pytest.mark.parametrize("entry, field", [
    ({"audiences": "a"}, "issuer"),
    ({"issuer": "https://i.example"}, "audiences"),
    ({"issuer": "https://i.example", "audiences": []}, "audiences"),
    ({"issuer": "https://i.example", "audiences": [1]}, "audiences"),
    ({"issuer": "http://idp.example", "audiences": "a"}, "issuer"),
    ({"issuer": "idp", "audiences": "a"}, "issuer"),
    ({"issuer": "https://i.example", "audiences": "a", "jwks_uri": "http://idp.example/keys"}, "jwks_uri"),
    ({"issuer": "https://i.example", "audiences": "a", "jwks_uri": "ftp://i.example/keys"}, "jwks_uri"),
    ({"issuer": "https://i.example", "audiences": "a", "preset": "nope"}, "preset"),
    ({"issuer": "https://i.example", "audiences": "a", "colour": "red"}, "colour"),
    ({"issuer": "https://i.example", "audiences": "a", "required_claims": ["sub"]}, "required_claims"),
    ({"issuer": "https://i.example", "audiences": "a", "algorithms": ["none"]}, "algorithms"),
    ({"issuer": "https://i.example", "audiences": "a", "algorithms": ["HS256"]}, "algorithms"),
    ({"issuer": "https://i.example", "audiences": "a", "audience_claim": "azp"}, "audience_claim"),
    ({"issuer": "https://i.example", "audiences": "a", "allow_http": "yes"}, "allow_http"),
    ({"issuer": "https://i.example", "audiences": "a", "revocations": "no"}, "revocations"),
    ({"issuer": "https://i.example", "audiences": "a", "claim_rules": {"ver": 2}}, "claim_rules"),
    ({"issuer": "https://i.example", "audiences": "a", "accepted_typ": ["at jwt"]}, "accepted_typ"),
    ({"issuer": "https://i.example", "audiences": "a", "roles": ["a b"]}, "roles"),
])
def test_a_bad_field_is_named_and_no_provider_is_built(entry, field):
    provider, problems = _one(entry)
    assert provider is None
    assert any(field in why for why in problems), problems


def test_plain_http_is_accepted_for_loopback_and_with_allow_http():
    loopback, problems = _one({"issuer": "http://127.0.0.1:9000", "audiences": "a"})
    assert problems == [] and loopback.issuer == "http://127.0.0.1:9000"
    allowed, problems = _one({"issuer": "http://idp.internal", "audiences": "a", "allow_http": True})
    assert problems == [] and allowed.allow_http


def test_an_entry_can_leave_the_revocation_store_out():
    provider, problems = _one({"preset": "keycloak", "issuer": "https://idp.example/", "audiences": "a",
                               "revocations": False})
    assert problems == [] and provider.revocations is False


def test_a_provider_with_its_own_keys_needs_no_url_issuer():
    provider, problems = _one({"issuer": "jwtgate", "audiences": "a"}, own_keys=True)
    assert problems == [] and provider.issuer == "jwtgate"


def test_bad_names_and_duplicate_issuers_are_refused():
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    providers = load_document({"providers": {
        "a": {"issuer": "https://i.example", "audiences": "x"},
        "b": {"issuer": "https://i.example", "audiences": "y"},
        "Bad Name": {"issuer": "https://j.example", "audiences": "y"},
    }}, problems)
    reasons = " ".join(why for _, why in problems.items)
    assert "configured twice" in reasons and "Bad Name" in reasons
    assert len(providers) == 2


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = tmp_path / "providers.toml"
    path.write_text('[providers.a]\nissuer = "idp"\n[providers.b]\naudiences = "x"\nissuer = 3\n[extra]\n')
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    assert load_file(str(path), problems) == ()
    reasons = [why for _, why in problems.items]
    assert any("[providers.a] issuer" in why for why in reasons)
    assert any("[providers.a] audiences" in why for why in reasons)
    assert any("[providers.b] issuer" in why for why in reasons)
    assert any("extra" in why for why in reasons)


def test_an_unreadable_or_invalid_file_is_a_problem_not_a_crash(tmp_path):
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    load_file(str(tmp_path / "missing.toml"), problems)
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers.a\n")
    load_file(str(bad), problems)
    assert [why.split(":")[1].strip()[:6] for _, why in problems.items] == ["cannot", "is not"]


def _documented_entries():
    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in [docs / "providers.md", *sorted((docs / "providers").glob("*.md"))]:
        for number, block in enumerate(re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)):
            yield pytest.param(block, id=f"{page.stem}-{number}")


@pytest.mark.parametrize("block", list(_documented_entries()))
def test_every_providers_file_the_docs_show_loads_as_written(block):
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    providers = load_document(tomllib.loads(block), problems)
    assert problems.items == [] and providers
