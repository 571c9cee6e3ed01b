"""Fakes the tests may use: time only (everything else in this project is real)."""


class FakeClock:
    """A settable clock: call it for the time, tick() to move it."""

    def __init__(self, now=1_800_000_000.0):
        self.now = float(now)

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds
