"""Per-location requirements (scopes, roles, claim values) that Nginx sends with each check.

A location states them with `set` before including jwtgate-protect.conf; the
verify location forwards them as X-Jwtgate-Require-* headers, which a client
can never supply (the subrequest passes no client header but Authorization).
"""

import functools
import re
from dataclasses import dataclass

from validator.providers import PROVIDER_NAME

_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,64}")
_CLAIM = re.compile(r"([A-Za-z0-9_]{1,64})=([A-Za-z0-9._:/@-]{1,128})")
_MAX_ITEMS = 32


class InvalidRequirement(ValueError):
    """A location's requirement is not in the documented syntax: refuse (fail closed)."""


@dataclass(frozen=True)
class Requirements:
    """All of `scopes`, any of `roles`, and every claim=value in `claims`."""

    scopes: tuple = ()
    roles: tuple = ()
    claims: tuple = ()

    def __bool__(self):
        return bool(self.scopes or self.roles or self.claims)


def _names(value):
    names = tuple(value.split())
    if len(names) > _MAX_ITEMS or not all(_NAME.fullmatch(name) for name in names):
        raise InvalidRequirement("names")
    return names


@functools.lru_cache(maxsize=256)
def parse(scopes, roles, claims):
    """Requirements from the three header values (None or space-separated); cached, few distinct values."""
    pairs = []
    for item in (claims or "").split():
        match = _CLAIM.fullmatch(item)
        if match is None:
            raise InvalidRequirement("claims")
        pairs.append((match.group(1), match.group(2)))
    if len(pairs) > _MAX_ITEMS:
        raise InvalidRequirement("claims")
    return Requirements(scopes=_names(scopes or ""), roles=_names(roles or ""), claims=tuple(pairs))


@functools.lru_cache(maxsize=64)
def providers(value):
    """The provider names a location accepts (`set $jwtgate_providers "a b"`), empty for any."""
    names = frozenset((value or "").split())
    if len(names) > _MAX_ITEMS or not all(PROVIDER_NAME.fullmatch(name) for name in names):
        raise InvalidRequirement("providers")
    return names


def unmet(identity, requirements):
    """True when the identity lacks a required scope, every listed role, or a required claim value."""
    if requirements.scopes and not set(requirements.scopes) <= set(identity.scopes):
        return True
    if requirements.roles and not set(requirements.roles) & set(identity.roles):
        return True
    for name, value in requirements.claims:
        if value not in identity.values(name):
            return True
    return False
