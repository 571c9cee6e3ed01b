"""Fixtures every unit test module may use."""

import pytest

from jwtgate.revocation import SqliteRevocationStore
from tests.fakes import FakeClock


@pytest.fixture
def clock(request):
    """A settable clock, at the test module's CLOCK_START when it sets one."""
    start = getattr(request.module, "CLOCK_START", None)
    return FakeClock() if start is None else FakeClock(start)


@pytest.fixture
def revocations(settings, clock):
    """The auth API's revocation store, on the module's `settings` and the fake clock, so that what the
    app records is still live when a test reads it."""
    revocations = SqliteRevocationStore(settings.revocation_db, clock=clock)
    revocations.create()
    return revocations
