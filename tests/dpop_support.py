"""The example DPoP client (examples/dpop_client.py) for tests, and proofs signed wrongly on purpose."""

import hashlib
import hmac
import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "dpop_client", Path(__file__).resolve().parent.parent / "examples" / "dpop_client.py")
dpop_client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dpop_client)

DpopKey = dpop_client.DpopKey
b64url = dpop_client.b64url


def unsigned(header, claims, signature=b""):
    """A compact JWS with any header and a given (or empty) signature: for `alg: none`."""
    return f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}.{b64url(signature)}"


def hmac_signed(header, claims, secret):
    """An HS256 JWS: a proof no client key signed."""
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"
