"""Password hashing with argon2id, and the policy for passwords an operator sets."""

import functools
import gzip
import importlib.resources
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12

_hasher = argon2.PasswordHasher()

# Verified against when the user does not exist, so an unknown name costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash(password):  # noqa: A001 - the contract's name; the builtin is not needed here
    return _hasher.hash(password)


def verify(password_hash, password):
    """True when password matches; False for a mismatch or an unreadable hash, never an exception."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_dummy(password):
    """Spend one verification on the dummy hash; always False."""
    verify(_DUMMY_HASH, password)
    return False


@functools.cache
def common_passwords():
    """The shipped list of common passwords, lower case (data/COMMON-PASSWORDS-LICENSE.txt says whence)."""
    data = importlib.resources.files("auth_api").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split("\n")) - {""}


def check_policy(password):
    """The password, or ValueError saying why an operator may not set it (NIST SP 800-63B section 5.1.1.2)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must be at least {MIN_LENGTH} characters")
    if password.lower() in common_passwords():
        raise ValueError("password is on the list of common passwords: choose another")
    return password


def generate():
    """A random password well above the policy minimum (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)
