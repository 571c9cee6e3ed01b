"""Password hashing with argon2id, and the policy for passwords an operator sets."""

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


def check_policy(password):
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must be at least {MIN_LENGTH} characters")
    return password


def generate():
    """A random password well above the policy minimum (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)
