"""Helpers for the services' gunicorn.conf.py files: check settings, pick bind and worker count."""

import os
import sys

from jwtgate.settings import ConfigError, EnvReader, data_dir


def settings_or_exit(settings_class, environ=os.environ):
    """Load a service's settings in the gunicorn master, so bad config stops start-up with one message."""
    try:
        return settings_class.from_env(environ)
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        raise SystemExit(2) from None


def bind_and_workers(prefix, service, default_workers, environ=os.environ):
    """(bind list, workers) from PREFIX_BIND (default: a unix socket in the data dir) and PREFIX_WORKERS."""
    env = EnvReader(environ, prefix)
    bind = env.text("BIND", f"unix:{data_dir(environ)}/run/{service}.sock")
    workers = env.integer("WORKERS", default_workers, minimum=1, maximum=64)
    try:
        env.finish()
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        raise SystemExit(2) from None
    return [bind], workers
