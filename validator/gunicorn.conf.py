# Gunicorn configuration for the validator: `gunicorn -c validator/gunicorn.conf.py`.
# Every value can be set through VALIDATOR_* variables; see the README.
import os

from jwtgate.logs import logconfig_dict
from jwtgate.serving import bind_and_workers, settings_or_exit
from validator.config import Settings

_settings = settings_or_exit(Settings)

wsgi_app = "validator.app:get_app()"

# Server socket: a unix socket by default; Nginx keeps connections to it alive.
bind, workers = bind_and_workers("VALIDATOR_", "validator", os.cpu_count() or 1)
backlog = 2048

# Worker processes: Falcon's ASGI app on uvicorn's event loop. Measured (issue #6)
# at about 3x the throughput of gthread workers behind auth_request.
worker_class = "uvicorn_worker.UvicornWorker"
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
