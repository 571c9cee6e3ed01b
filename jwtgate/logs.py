"""Structured logs: one JSON object a line, with an allow-list of fields."""

import hashlib
import json
import logging
import time

from jwtgate.request_id import current as current_request_id

# Only these `extra=` fields reach the log line; anything else passed by mistake is dropped.
ALLOWED_FIELDS = (
    "service",
    "request_id",
    "result",
    "reason",
    "token_fp",
    "user",
    "kid",
    "keys",
    "cursor",
    "status",
    "method",
    "path",
    "duration_ms",
    "error",
    "setting",
    "url",
    "pid",
)


def fingerprint(token):
    """The first 12 hex digits of the token's SHA-256: enough to correlate, useless to replay."""
    if isinstance(token, str):
        token = token.encode("utf-8", "surrogateescape")
    return hashlib.sha256(token).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line carrying only allow-listed fields."""

    def __init__(self, service="jwtgate"):
        super().__init__()
        self.service = service

    def format(self, record):
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
        }
        for field in ALLOWED_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if "request_id" not in line and current_request_id.get() is not None:
            line["request_id"] = current_request_id.get()
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks may quote request data.
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, separators=(",", ":"), default=str)


def logconfig_dict(service, level="info"):
    """A logging.config dict for gunicorn's `logconfig_dict` and for plain processes."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }
