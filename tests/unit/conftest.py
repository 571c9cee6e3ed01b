"""Fixtures every unit test module may use."""

import pytest

from tests.fakes import FakeClock


@pytest.fixture
def clock(request):
    """A settable clock, at the test module's CLOCK_START when it sets one."""
    start = getattr(request.module, "CLOCK_START", None)
    return FakeClock() if start is None else FakeClock(start)
