"""Gunicorn settings for auth_api: `gunicorn -c auth_api/gunicorn.conf.py`."""

import os

from jwtgate import logs
from jwtgate import metrics
from jwtgate import settings as env

_reader = env.EnvReader(os.environ, "AUTH_")
_data_dir = env.data_dir(os.environ)
_run_dir = os.path.join(_data_dir, "run")
# Before any import of prometheus_client: the workers' metrics go to files every worker shares.
_metrics_dir = metrics.use_multiprocess_dir("auth_api")

#
# Server socket
#
#   bind - AUTH_BIND: "unix:PATH" or "HOST:PORT". The default unix socket sits beside the
#          validator's, for nginx to proxy to; nothing else needs to reach this service.
#
bind = _reader.text("BIND", f"unix:{_run_dir}/auth_api.sock")
if not bind:
    _reader.problem("BIND", "must not be empty")

#
# Worker processes
#
#   workers - AUTH_WORKERS. Each login spends ~90 ms and 64 MiB in argon2, so a few
#             processes cover a lot of logins.
#   threads - gthread workers: a thread per request, while argon2 releases the GIL.
#   timeout - a worker silent this long is killed and replaced.
#
workers = _reader.integer("WORKERS", 2, minimum=1, maximum=64)
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 10
keepalive = 5

#
# Request limits
#
#   The API takes a small JSON body and a handful of headers; refuse anything larger
#   before the application sees it (the body itself is capped by AUTH_MAX_BODY_BYTES).
#
limit_request_line = 2048
limit_request_fields = 50
limit_request_field_size = 4096

#
# Logging
#
#   JSON lines on stderr from jwtgate.logs. No access log: gunicorn's default format
#   records the query string, and request logs belong to nginx.
#
accesslog = None
logconfig_dict = logs.logconfig_dict("auth_api")

#
# Control socket
#
#   None, as for the validator and backend: its default path (~/.gunicorn/gunicorn.ctl)
#   is shared by every gunicorn of the user, so the three services would clash.
#
control_socket_disable = True

#
# Process naming and the application
#
proc_name = "auth_api"
wsgi_app = "auth_api.app:get_app()"

_reader.finish()


#
# Server hooks
#
#   on_starting - gunicorn binds the unix socket but does not create its directory; and the
#                 metrics of an earlier run are dropped.
#   child_exit  - a dead worker's live gauges are dropped; its counters stay in the totals.
#
def on_starting(server):
    if bind.startswith("unix:"):
        os.makedirs(os.path.dirname(bind[len("unix:"):]), exist_ok=True)
    metrics.clean_multiprocess_dir(_metrics_dir)


def child_exit(server, worker):
    metrics.mark_worker_dead(worker.pid)
