"""The request id Nginx gives every request ($request_id, passed as X-Request-Id), in every log line."""

import contextvars
import re

HEADER = "X-Request-Id"
# Nginx's $request_id is 32 hex digits; anything else a client could send is not logged.
_VALID = re.compile(r"[0-9A-Za-z-]{1,64}")

# The id of the request this thread (or task) is serving; jwtgate.logs adds it to each line.
current = contextvars.ContextVar("request_id", default=None)


def clean(value):
    """The value when it looks like a request id, else None: a header is client data."""
    return value if value and _VALID.fullmatch(value) else None


class RequestIdMiddleware:
    """Falcon WSGI middleware: every log line written while serving a request carries its id."""

    def process_request(self, req, resp):
        req.context.request_id_token = current.set(clean(req.get_header(HEADER)))

    def process_response(self, req, resp, resource, req_succeeded):
        token = getattr(req.context, "request_id_token", None)
        if token is not None:
            # gthread workers reuse threads: the next request must not inherit this id.
            current.reset(token)
