"""Every single-byte mutation of a valid token is refused: exhaustive over positions, not sampled."""

import base64

import pytest

from tests.minting import b64, claims, rs256
from jwtgate.reasons import REASONS


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Replacements tried at every position: the next base64url letter (the mutation that keeps the
# syntax valid), the separators and alphabet of other base64 spellings, and bytes outside it.
REPLACEMENTS = {
    "next-letter": lambda old: B64URL[(B64URL.index(old) + 1) % 64] if old in B64URL else "A",
    "previous-letter": lambda old: B64URL[(B64URL.index(old) - 1) % 64] if old in B64URL else "z",
    "dot": lambda old: ".",
    "padding": lambda old: "=",
    "plus": lambda old: "+",
    "slash": lambda old: "/",
    "space": lambda old: " ",
    "nul": lambda old: "\x00",
    "latin1": lambda old: "\xff",
}


@pytest.fixture(scope="module")
def genuine(validator):
    token = rs256(validator.signer, claims(validator.clock(), roles=["user", "admin"], scope="a:read b:write"))
    result = validator.verify(f"Bearer {token}")
    assert result.status_code == 200
    return token


def _accepted_mutants(validator, mutants):
    wrong = []
    for where, value in mutants:
        result = validator.verify(value)
        if result.status_code != 401 or result.headers.get("X-Auth-Error") not in REASONS:
            wrong.append((where, result.status_code, result.headers.get("X-Auth-Error")))
        elif result.headers["X-Auth-Error"] == "internal_error":
            wrong.append((where, 401, "internal_error"))
    return wrong


@pytest.mark.parametrize("replacement", sorted(REPLACEMENTS))
def test_every_position_replaced(validator, genuine, replacement):
    value = f"Bearer {genuine}"
    change = REPLACEMENTS[replacement]
    mutants = []
    for position, old in enumerate(value):
        new = change(old)
        if new != old:
            mutants.append((position, value[:position] + new + value[position + 1:]))
    assert len(mutants) >= len(genuine) - 3
    assert _accepted_mutants(validator, mutants) == []


def test_every_position_deleted(validator, genuine):
    value = f"Bearer {genuine}"
    mutants = [(position, value[:position] + value[position + 1:]) for position in range(len(value))]
    assert _accepted_mutants(validator, mutants) == []


def test_every_position_duplicated(validator, genuine):
    value = f"Bearer {genuine}"
    mutants = [(position, value[:position] + value[position] + value[position:])
               for position in range(len("Bearer "), len(value))]
    assert _accepted_mutants(validator, mutants) == []


@pytest.mark.parametrize("bit", range(8))
def test_every_bit_of_every_decoded_byte_flipped(validator, genuine, bit):
    """Flip one bit of the decoded bytes of each segment and re-encode canonically."""
    segments = genuine.split(".")
    mutants = []
    for index, segment in enumerate(segments):
        data = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        for position in range(len(data)):
            data[position] ^= 1 << bit
            changed = list(segments)
            changed[index] = b64(bytes(data))
            mutants.append(((index, position), "Bearer " + ".".join(changed)))
            data[position] ^= 1 << bit
    assert _accepted_mutants(validator, mutants) == []
