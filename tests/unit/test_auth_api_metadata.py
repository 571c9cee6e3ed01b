"""The auth API's RFC 8414 metadata through falcon.testing: what it says, where, and when it is not served."""

import json
import logging

import pytest
from falcon import testing

from auth_api.app import create_app
from auth_api.config import Settings
from auth_api.keys import KeyRing
from auth_api.store import UserStore
from jwtgate import discovery
from jwtgate.fetch import Response
from jwtgate.logs import JsonFormatter
from jwtgate.revocation import SqliteRevocationStore

METADATA = "/.well-known/oauth-authorization-server"


@pytest.fixture(scope="module")
def keyring(tmp_path_factory):
    return KeyRing.open(Settings(data_dir=str(tmp_path_factory.mktemp("keys"))))


def client_for(tmp_path, keyring, clock, issuer):
    settings = Settings(data_dir=str(tmp_path), issuer=issuer)
    revocations = SqliteRevocationStore(settings.revocation_db)
    revocations.create()
    return testing.TestClient(create_app(settings, store=UserStore.open(settings, clock=clock), keyring=keyring,
                                         revocations=revocations, clock=clock))


def test_metadata_names_the_issuer_and_its_key_set_and_nothing_the_api_does_not_do(tmp_path, keyring, clock):
    client = client_for(tmp_path, keyring, clock, "http://127.0.0.1:8080")
    response = client.simulate_get(METADATA)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=3600"
    # No endpoint the login API does not implement: no authorization, token, revocation or userinfo endpoint.
    assert response.json == {
        "issuer": "http://127.0.0.1:8080",
        "jwks_uri": "http://127.0.0.1:8080/.well-known/jwks.json",
        "response_types_supported": [],
        "grant_types_supported": [],
        "dpop_signing_alg_values_supported": ["ES256", "RS256"],
    }
    assert client.simulate_get("/.well-known/openid-configuration").status_code == 404


def test_the_validator_discovers_the_key_set_from_the_issuer_alone(tmp_path, keyring, clock):
    issuer = "https://login.example"
    client = client_for(tmp_path, keyring, clock, issuer)

    def fetch(url):
        answer = client.simulate_get(url.removeprefix(issuer))
        return Response(answer.status_code, {name.lower(): value for name, value in answer.headers.items()},
                        answer.content)

    metadata = discovery.discover(issuer, kind=discovery.OAUTH, fetch=fetch)
    assert metadata.jwks_uri == f"{issuer}/.well-known/jwks.json"
    assert metadata.max_age == 3600
    assert fetch(metadata.jwks_uri).status == 200
    assert [key["kid"] for key in client.simulate_get("/.well-known/jwks.json").json["keys"]] == [keyring.active.kid]


@pytest.mark.parametrize("issuer, path", [
    ("https://login.example/tenant", f"{METADATA}/tenant"),
    ("https://login.example/tenant/", f"{METADATA}/tenant"),
    ("https://login.example/", METADATA),
])
def test_an_issuer_with_a_path_has_its_metadata_at_the_path_inserted_url(tmp_path, keyring, clock, issuer, path):
    client = client_for(tmp_path, keyring, clock, issuer)
    response = client.simulate_get(path)
    assert response.status_code == 200
    assert response.json["issuer"] == issuer
    # RFC 8414 section 3.1: the well-known name goes before the issuer's path, never after it.
    assert response.json["jwks_uri"] == "https://login.example/.well-known/jwks.json"
    if path != METADATA:
        assert client.simulate_get(METADATA).status_code == 404
        assert client.simulate_get(f"/tenant{METADATA}").status_code == 404


@pytest.mark.parametrize("issuer", ["jwtgate", "urn:example:jwtgate", "ftp://login.example",
                                   "https://login.example/?tenant=a", "https://user@login.example",
                                   "https://login.example/{tenant}", "https://login.example/a%2Fb"])
def test_an_issuer_no_metadata_url_fits_has_none_and_start_up_says_why(tmp_path, keyring, clock, caplog, issuer):
    with caplog.at_level(logging.INFO, logger="auth_api"):
        client = client_for(tmp_path, keyring, clock, issuer)
    assert client.simulate_get(METADATA).status_code == 404
    assert client.simulate_get("/.well-known/jwks.json").status_code == 200
    records = [record for record in caplog.records if record.getMessage() == "authorization server metadata not served"]
    assert len(records) == 1
    line = json.loads(JsonFormatter("auth_api").format(records[0]))
    assert line["setting"] == "AUTH_ISSUER"
    assert line["reason"].startswith("AUTH_ISSUER")
