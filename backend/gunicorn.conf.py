# Gunicorn configuration for the sample backend: `gunicorn -c backend/gunicorn.conf.py`.
from jwtgate.logs import logconfig_dict
from jwtgate.serving import bind_and_workers

wsgi_app = "backend.app:get_app()"

# Server socket: a unix socket in the data directory by default (BACKEND_BIND), loopback only.
bind, workers = bind_and_workers("BACKEND_", "backend", 2)

# Worker processes: threads keep Nginx's upstream keepalive connections cheap.
worker_class = "gthread"
threads = 4
timeout = 30
keepalive = 75

# Logging: JSON lines on stderr, no access log.
accesslog = None
logconfig_dict = logconfig_dict("backend")
# No control socket: its default path is shared by every gunicorn of the user.
control_socket_disable = True
proc_name = "jwtgate-backend"
