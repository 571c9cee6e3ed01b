# Gunicorn configuration for the validator: `gunicorn -c validator/gunicorn.conf.py`.
# Every value can be set through VALIDATOR_* variables; see the README.
import os

from jwtgate import metrics
from jwtgate.logs import logconfig_dict
from jwtgate.serving import bind_and_workers, settings_or_exit
from validator.config import Settings

_settings = settings_or_exit(Settings)
# Before any import of prometheus_client: the workers' metrics go to files every worker shares.
_metrics_dir = metrics.use_multiprocess_dir("validator")

wsgi_app = "validator.app:get_app()"

# Server socket: a unix socket by default; Nginx keeps connections to it alive.
bind, workers = bind_and_workers("VALIDATOR_", "validator", os.cpu_count() or 1)
backlog = 2048

# Worker processes: Falcon's ASGI app on uvicorn's event loop (validator/worker.py): an event loop
# answers many keep-alive connections from Nginx without a thread each, unlike gthread workers.
worker_class = "validator.worker.ValidatorWorker"
timeout = 30
graceful_timeout = 10
# Longer than Nginx's upstream keepalive_timeout (60s), so Nginx always closes
# an idle connection first and never reuses one we are closing.
keepalive = 75

# Logging: JSON lines on stderr; no access log (it would carry request headers).
accesslog = None
logconfig_dict = logconfig_dict("validator", _settings.log_level)
# No control socket: its default path is shared by every gunicorn of the user.
control_socket_disable = True
proc_name = "jwtgate-validator"


# Server hooks: start with no metrics of an earlier run; drop a dead worker's live gauges.
def on_starting(server):
    metrics.clean_multiprocess_dir(_metrics_dir)


def child_exit(server, worker):
    metrics.mark_worker_dead(worker.pid)
