"""Prometheus metrics of the auth API: logins by outcome. /metrics is reached only through Nginx's
internal metrics listener; under gunicorn the values are summed over every worker."""

from prometheus_client import Counter

from jwtgate.metrics import exposition

# unknown_user and wrong_password look the same to clients; here they tell spraying from guessing.
OUTCOMES = ("ok", "demo", "wrong_password", "unknown_user", "disabled", "locked")

LOGINS = Counter("auth_api_logins_total", "Login attempts by outcome.", ["outcome"])
for _outcome in OUTCOMES:
    LOGINS.labels(outcome=_outcome)


def count_login(outcome):
    LOGINS.labels(outcome=outcome if outcome in OUTCOMES else "other").inc()


class Metrics:
    """GET /metrics: every worker's metrics in the Prometheus text format."""

    def on_get(self, req, resp):
        content_type, body = exposition(req.get_header("Accept"))
        resp.content_type = content_type
        resp.data = body
        resp.cache_control = ["no-store"]
