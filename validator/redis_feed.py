"""A revocation feed that syncs as soon as Redis announces a revocation, and polls as a safety net."""

import asyncio
import logging
import time

import redis.asyncio

from jwtgate.redis_revocation import CHANNEL, SOCKET_TIMEOUT_SECONDS
from validator.revocation import RevocationFeed

log = logging.getLogger(__name__)


class PushedRevocationFeed(RevocationFeed):
    """RevocationFeed whose worker waits on a Redis subscription between polls, not on a timer alone.

    A published message only wakes the worker: it then reads the stream after its cursor like any
    poll, so a lost message (a reconnect, a slow subscriber) costs at most one poll interval, and
    the staleness bound of RevocationFeed applies unchanged while Redis is unreachable.
    """

    def __init__(self, store, revocations, *, url, interval, max_staleness, clock=time.monotonic,
                 wall_clock=time.time):
        super().__init__(store, revocations, interval=interval, max_staleness=max_staleness, clock=clock,
                         wall_clock=wall_clock)
        self._url = url

    async def _wakeups(self, wake):
        """Set `wake` on every published revocation; reconnect (after a pause) whenever Redis drops us."""
        while True:
            client = redis.asyncio.Redis.from_url(self._url, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    # Anything added while we were not subscribed is read now, not at the next poll.
                    wake.set()
                    async for _ in pubsub.listen():
                        wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("revocation subscription lost", extra={"error": type(error).__name__})
            finally:
                await client.aclose()
            await asyncio.sleep(self._interval)

    async def run(self):
        """Sync on every announcement, and at least every interval; purge expired entries about once a minute."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._wakeups(wake))
        purged_at = self._clock()
        try:
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=self._interval)
                except asyncio.TimeoutError:
                    pass
                wake.clear()
                await self.sync()
                if self._clock() - purged_at > 60:
                    self._revocations.purge(self._wall_clock())
                    purged_at = self._clock()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
