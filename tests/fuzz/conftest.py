"""Hypothesis profiles and the in-process validator the fuzz tests attack.

HYPOTHESIS_PROFILE=long (as `make fuzz` sets it) runs many more examples than the bounded
`fuzz` profile that `make test` uses.
"""

import asyncio
import os

import falcon.testing
import pytest
from hypothesis import HealthCheck, settings

from tests.fakes import FakeClock, FakeJwksServer
from tests.minting import RsaSigner
from validator.app import create_app
from validator.config import Settings
from jwtgate.keys import JwksSource

settings.register_profile(
    "fuzz", max_examples=200, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=5_000, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))

JWKS_URL = "http://auth/jwks"


class Validator:
    """The validator app in-process, its signing key and its (frozen) clock."""

    def __init__(self, settings=None):
        self.signer = RsaSigner(kid="fuzz-key")
        self.clock = FakeClock()
        self.settings = settings or Settings(jwks_url=JWKS_URL, provider_preset="jwtgate")
        keys = JwksSource(JWKS_URL, fetch=FakeJwksServer(self.signer), clock=self.clock, min_interval=5)
        asyncio.run(keys.refresh())
        self.client = falcon.testing.TestClient(create_app(self.settings, keys=keys, clock=self.clock))

    def verify(self, value):
        """GET /verify with this Authorization value (None: no header)."""
        headers = {} if value is None else {"Authorization": value}
        return self.client.simulate_get("/verify", headers=headers)


@pytest.fixture(scope="session")
def validator():
    return Validator()
