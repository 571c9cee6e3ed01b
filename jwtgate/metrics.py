"""Prometheus metrics under gunicorn: one multiprocess directory per service, and its exposition.

prometheus_client picks its storage (in memory, or mmap files shared by every worker) when it is
first imported, from PROMETHEUS_MULTIPROC_DIR. Gunicorn forks its workers from the master, so
the variable must be set before anything in the master imports prometheus_client: that is why
this module imports it only inside its functions, and why each gunicorn.conf.py calls
`use_multiprocess_dir` at the top.
"""

import os
import shutil

from jwtgate.settings import data_dir

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir(service, environ=os.environ):
    """<data dir>/metrics/<service>: each service cleans its own at start."""
    return os.path.join(data_dir(environ), "metrics", service)


def use_multiprocess_dir(service, environ=os.environ):
    """Point PROMETHEUS_MULTIPROC_DIR at the service's directory (an operator's own value wins).

    The directory must exist before the app is imported (`gunicorn --check-config` imports it
    too), but only inside an existing data directory: a config evaluated with another
    machine's paths must not create them here.
    """
    path = environ.setdefault(ENV, multiprocess_dir(service, environ))
    if path == multiprocess_dir(service, environ) and os.path.isdir(data_dir(environ)):
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def clean_multiprocess_dir(path):
    """Create the directory empty: an earlier run's files would add its counts to ours (gunicorn on_starting)."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700, exist_ok=True)


def mark_worker_dead(pid):
    """Drop a dead worker's live gauges (gunicorn child_exit); its counters stay in the totals."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def exposition(accept=None):
    """(content type, body) of every metric, in the format the scraper's Accept header asks for
    (Prometheus' text format 0.0.4 by default); summed over all workers in multiprocess mode."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder

    if os.environ.get(ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return content_type, encoder(registry)
