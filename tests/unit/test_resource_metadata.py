"""Protected resource metadata (RFC 9728) and the resource_metadata challenge parameter, in-process."""

import falcon.testing
import pytest

from jwtgate.settings import ConfigError
from tests.fakes import FakeClock
from tests.minting import claims, hs256
from validator.app import create_app, make_policy
from validator.config import Settings
from jwtgate.keys import StaticKeys
from validator.providers import ProblemList, TrustedProviders, load_document
from jwtgate.credentials import challenge
from jwtgate.reasons import REASONS

ORIGIN = "https://api.example"
WELL_KNOWN = "/.well-known/oauth-protected-resource"
METADATA_URL = f'resource_metadata="{ORIGIN}{WELL_KNOWN}"'
SECRET = b"s" * 40
BASE = {"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks"}


def settings_from(**environ):
    return Settings.from_env({**BASE, **{f"VALIDATOR_{name}": value for name, value in environ.items()}})


def client(settings, clock=None):
    return falcon.testing.TestClient(create_app(settings, keys=StaticKeys(SECRET), clock=clock or FakeClock()))


@pytest.fixture
def settings():
    return settings_from(PUBLIC_ORIGINS=ORIGIN, PROVIDER_PRESET="jwtgate")


def several_providers(settings):
    """An app trusting three providers: two issuers are URLs, one (ours, by its JWKS URL) is not."""
    problems = ProblemList("VALIDATOR_PROVIDERS_FILE")
    providers = load_document({"providers": {
        "keycloak": {"preset": "keycloak", "issuer": "https://sso.example/realms/main", "audiences": ["api"]},
        "jwtgate": {"preset": "jwtgate", "issuer": "jwtgate", "audiences": ["jwtgate-api"],
                    "jwks_uri": "http://127.0.0.1/jwks"},
        "partners": {"issuer": "https://partners.example/", "audiences": ["api"]},
    }}, problems)
    assert problems.items == []
    trusted = TrustedProviders((provider.name, make_policy(settings, provider), StaticKeys(SECRET))
                               for provider in providers)
    return falcon.testing.TestClient(create_app(settings, providers=trusted))


def test_the_document_names_the_public_origin_and_the_providers_issuers(settings):
    result = several_providers(settings).simulate_get(WELL_KNOWN)
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/json"
    assert result.headers["Cache-Control"] == "max-age=300"
    # Our own issuer, "jwtgate", is no RFC 8414 issuer identifier: no client could find its metadata.
    assert result.json == {
        "resource": ORIGIN,
        "authorization_servers": ["https://sso.example/realms/main", "https://partners.example/"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "RS256"],
        "dpop_bound_access_tokens_required": False,
    }


@pytest.mark.parametrize("path", ["/api/protected", "/api/protected/", "/api/orders/v1.2/~x_y-z"])
def test_the_path_suffixed_form_describes_the_resource_at_that_path(settings, path):
    # RFC 9728 section 3.1: resource <origin>/api/protected has its metadata at WELL_KNOWN/api/protected.
    result = client(settings).simulate_get(WELL_KNOWN + path)
    assert result.status_code == 200
    assert result.json["resource"] == ORIGIN + path
    assert result.json["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize("path", ["/a/../b", "/a/./b", "//a", "/a%20b", "/%2e%2e", "/" + "a" * 300,
                                  "/a\"b", "/<script>"])
def test_a_path_that_names_no_resource_of_ours_is_404(settings, path):
    result = client(settings).simulate_get(WELL_KNOWN + path)
    assert result.status_code == 404, result.text
    assert result.json == {"error": "not_found", "message": "Not found"}
    assert result.headers["Cache-Control"] == "no-store"


def test_the_resource_is_the_first_public_origin_never_the_host():
    settings = settings_from(PUBLIC_ORIGINS="https://api.example http://127.0.0.1:8080 https://b.example")
    assert settings.resource_origin == "https://api.example"
    result = client(settings).simulate_get(WELL_KNOWN + "/api/protected", headers={"Host": "evil.example"})
    assert result.json["resource"] == "https://api.example/api/protected"
    assert "evil" not in result.text


def test_head_is_answered_like_get(settings):
    result = client(settings).simulate_head(WELL_KNOWN)
    assert result.status_code == 200 and result.headers["Cache-Control"] == "max-age=300"


def test_scopes_supported_is_a_setting_checked_at_start():
    assert settings_from(PUBLIC_ORIGINS=ORIGIN).scopes_supported == ()
    settings = settings_from(PUBLIC_ORIGINS=ORIGIN, SCOPES_SUPPORTED=" orders:read  orders:write orders:read ")
    assert settings.scopes_supported == ("orders:read", "orders:write")
    assert client(settings).simulate_get(WELL_KNOWN).json["scopes_supported"] == ["orders:read", "orders:write"]
    assert "scopes_supported" not in client(settings_from(PUBLIC_ORIGINS=ORIGIN)).simulate_get(WELL_KNOWN).json
    for bad in ('a"b', "a\\b"):
        with pytest.raises(ConfigError, match="VALIDATOR_SCOPES_SUPPORTED"):
            settings_from(SCOPES_SUPPORTED=bad)


def test_without_a_public_origin_there_is_no_metadata_and_no_challenge_names_it():
    settings = settings_from(PROVIDER_PRESET="jwtgate")
    assert settings.resource_origin == ""
    app = client(settings)
    for path in (WELL_KNOWN, WELL_KNOWN + "/api/protected"):
        result = app.simulate_get(path)
        assert result.status_code == 404 and result.headers["Cache-Control"] == "no-store"
    assert app.simulate_get("/verify").headers["WWW-Authenticate"] == 'Bearer realm="jwtgate"'


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_every_challenge_names_the_metadata_in_both_schemes(reason):
    error, description = REASONS[reason]
    url = ORIGIN + WELL_KNOWN
    errors = "" if error is None else f', error="{error}", error_description="{description}"'
    assert challenge("jwtgate", reason, "Bearer", url) == f'Bearer realm="jwtgate"{errors}, {METADATA_URL}'
    assert challenge("jwtgate", reason, "DPoP", url) == (
        f'DPoP realm="jwtgate"{errors}, {METADATA_URL}, algs="ES256 RS256"')
    assert challenge("jwtgate", reason) == f'Bearer realm="jwtgate"{errors}'


def test_the_verify_answers_carry_it(settings):
    clock = FakeClock()
    app = client(settings, clock)
    assert app.simulate_get("/verify").headers["WWW-Authenticate"] == f'Bearer realm="jwtgate", {METADATA_URL}'
    malformed = app.simulate_get("/verify", headers={"Authorization": "DPoP not.a.token"})
    assert malformed.headers["WWW-Authenticate"] == (
        f'DPoP realm="jwtgate", error="invalid_token", error_description="Malformed token", {METADATA_URL},'
        ' algs="ES256 RS256"')
    # RFC 6750 section 3.1 on a 403: the scope needed comes after.
    token = hs256(SECRET, claims(clock(), scope="orders:read"))
    forbidden = app.simulate_get("/verify", headers={"Authorization": f"Bearer {token}",
                                                     "X-Jwtgate-Require-Scopes": "orders:write"})
    assert forbidden.status_code == 403
    assert forbidden.headers["WWW-Authenticate"] == (
        'Bearer realm="jwtgate", error="insufficient_scope", error_description="Insufficient scope or role", '
        f'{METADATA_URL}, scope="orders:write"')
