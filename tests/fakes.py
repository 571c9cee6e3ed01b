"""Fakes the tests may use: time, and a JWKS document for JwksSource's fetch hook (everything else is real)."""

import json

from jwtgate.fetch import Response


class FakeClock:
    """A settable clock: call it for the time, tick() to move it."""

    def __init__(self, now=1_800_000_000.0):
        self.now = float(now)

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


class FakeJwksServer:
    """Serves a JWKS document to JwksSource's fetch hook and counts the fetches; `fail` makes them fail."""

    def __init__(self, *signers):
        self.document = {"keys": [signer.jwk for signer in signers]}
        self.fetches = 0
        self.fail = False

    def __call__(self, url, *, unix_socket=None, timeout=None):
        self.fetches += 1
        if self.fail:
            raise OSError("connection refused")
        return Response(200, {}, json.dumps(self.document).encode())
