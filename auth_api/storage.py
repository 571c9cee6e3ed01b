"""What the settings select for the auth API's shared state: revocations, lockout counters, and
the errors that mean one of those services is unreachable (answered 503, never skipped)."""

import importlib

from auth_api.limits import SqlFailureCounters
from jwtgate.revocation import SqliteRevocationStore, is_redis_url
from jwtgate.settings import installed


def _outage_errors():
    """A Redis or PostgreSQL outage (psycopg_pool.PoolTimeout is an OperationalError), of the extras installed.

    A client that is not installed raises nothing: the settings refuse to name a store without its extra.
    """
    errors = []
    if installed("redis"):
        redis = importlib.import_module("redis")
        errors += [redis.ConnectionError, redis.TimeoutError]
    if installed("psycopg"):
        errors.append(importlib.import_module("psycopg").OperationalError)
    return tuple(errors)


UNAVAILABLE = _outage_errors()


def open_revocations(settings):
    """The revocation store of AUTH_REVOCATION_DB: <data_dir>/revocations.db (created) or Redis."""
    if is_redis_url(settings.revocation_db):
        from jwtgate.redis_revocation import RedisRevocationStore

        # Trimmed once every access token it could refuse has expired.
        return RedisRevocationStore(settings.revocation_db, retention_seconds=settings.access_token_ttl_seconds
                                    + settings.revocation_margin_seconds)
    store = SqliteRevocationStore(settings.revocation_db)
    store.create()
    return store


def open_failure_counters(settings, store):
    """Lockout counters: AUTH_LOCKOUT_DB's Redis, else the user store's own database."""
    if settings.lockout_store:
        from auth_api.shared_limits import RedisFailureCounters
        from jwtgate.redis_revocation import client_from_url

        return RedisFailureCounters(client_from_url(settings.lockout_store))
    return SqlFailureCounters(store.database)
