"""What the settings select for the auth API's shared state: revocations, lockout counters, and
the errors that mean one of those services is unreachable (answered 503, never skipped)."""

import psycopg
import redis

from auth_api.limits import SqlFailureCounters
from auth_api.shared_limits import RedisFailureCounters
from jwtgate.redis_revocation import RedisRevocationStore, client_from_url
from jwtgate.revocation import SqliteRevocationStore, is_redis_url

# A Redis or PostgreSQL outage (psycopg_pool.PoolTimeout is an OperationalError).
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, psycopg.OperationalError)


def open_revocations(settings):
    """The revocation store of AUTH_REVOCATION_DB: <data_dir>/revocations.db (created) or Redis."""
    if is_redis_url(settings.revocation_db):
        # Trimmed once every access token it could refuse has expired.
        return RedisRevocationStore(settings.revocation_db, retention_seconds=settings.access_token_ttl_seconds
                                    + settings.revocation_margin_seconds)
    store = SqliteRevocationStore(settings.revocation_db)
    store.create()
    return store


def open_failure_counters(settings, store):
    """Lockout counters: AUTH_LOCKOUT_DB's Redis, else the user store's own database."""
    if settings.lockout_store:
        return RedisFailureCounters(client_from_url(settings.lockout_store))
    return SqlFailureCounters(store.database)
