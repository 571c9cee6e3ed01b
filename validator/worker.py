"""The validator's gunicorn worker: uvicorn's, without per-request work that only Nginx would see,
and with a stop that drops no check on its way in."""

import asyncio
import sys

from gunicorn.arbiter import Arbiter
from uvicorn import Server
from uvicorn_worker import UvicornWorker

# How long a stopping worker keeps answering on its open connections after it stops accepting.
DRAIN_SECONDS = 0.5


class DrainingServer(Server):
    """uvicorn's server, but a stop first closes the listening socket, then lets requests already on
    their way arrive and be answered, and only then closes the idle connections.

    uvicorn closes every connection without a request in flight at once. One the worker accepted
    just before a reload (gunicorn HUP) then goes with Nginx's check still unread: the kernel resets
    it, and Nginx, which retries a failed kept-alive connection but not a new one to a lone server,
    answers 503 (tests/integration/test_faults_load.py).
    """

    async def shutdown(self, sockets=None):
        for server in self.servers:
            server.close()
        await asyncio.sleep(DRAIN_SECONDS)
        await super().shutdown(sockets=sockets)


class ValidatorWorker(UvicornWorker):
    """Only Nginx talks to the validator: no proxy headers to rewrite the client address from (the
    answer never depends on it), and no Date or Server header for Nginx to parse and drop: each is
    work on every /verify."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False, "server_header": False,
                     "date_header": False}

    async def _serve(self):
        # UvicornWorker._serve (uvicorn-worker 0.4.0, pinned in setup.cfg) with DrainingServer.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
