"""The validator's gunicorn worker: uvicorn's, without per-request work that only Nginx would see."""

from uvicorn_worker import UvicornWorker


class ValidatorWorker(UvicornWorker):
    """Only Nginx talks to the validator: no proxy headers to rewrite the client address from (the
    answer never depends on it), and no Date or Server header for Nginx to parse and drop. Measured
    in `make bench` (issue #6): each is work on every /verify."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False, "server_header": False,
                     "date_header": False}
