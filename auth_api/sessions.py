"""Login sessions: rotating refresh tokens, and revocations that reach every validator."""

import hashlib
import re
import secrets
import time

from jwtgate.revocation import Revocation

# What we hand out: 32 random bytes, base64url. Anything else is not worth a database query.
REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# A worker deletes expired sessions and their refresh tokens on its first login, then at most this often:
# without it the store grows with every login forever.
PURGE_INTERVAL_SECONDS = 3600


def refresh_hash(token):
    """Refresh tokens are stored as their SHA-256 only."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class Sessions:
    """Starts, rotates and ends sessions in the user store, and records revocations for the validators."""

    def __init__(self, settings, *, store, revocations, clock=time.time):
        self._settings = settings
        self._store = store
        self._revocations = revocations
        self._clock = clock
        self._purged_at = None

    def _window(self):
        """When every access token issued until now has expired, validator leeway included."""
        return int(self._clock()) + self._settings.access_token_ttl_seconds + self._settings.revocation_margin_seconds

    def start(self, username, jkt=None):
        """A new session for username: (session id, refresh token, seconds it stays valid).

        With jkt (a DPoP key's thumbprint) its refresh tokens are bound to that key.
        """
        session_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(32)
        lifetime = self._settings.refresh_token_ttl_seconds
        # The session's lifetime is fixed at login: rotation never extends it.
        self._store.create_session(session_id, username, refresh_hash(token), expires_at=int(self._clock()) + lifetime,
                                   jkt=jkt)
        self._purge_expired()
        return session_id, token, lifetime

    def _purge_expired(self):
        now = self._clock()
        if self._purged_at is None or now - self._purged_at >= PURGE_INTERVAL_SECONDS:
            self._purged_at = now
            self._store.purge_sessions()

    def rotate(self, token, jkt=None):
        """Spend a refresh token: (Refresh outcome, the new token or None). Reuse revokes the session.

        jkt is the thumbprint of the request's DPoP proof key: a bound session needs the same one.
        """
        if not isinstance(token, str) or not REFRESH_TOKEN.fullmatch(token):
            return self._store.rotate_refresh_token("", ""), None
        new_token = secrets.token_urlsafe(32)
        outcome = self._store.rotate_refresh_token(refresh_hash(token), refresh_hash(new_token), jkt)
        if outcome.status == "reused":
            self._revocations.add([Revocation("sid", outcome.session_id, self._window())])
        return outcome, new_token if outcome.status == "ok" else None

    def end(self, session_id):
        self._store.revoke_session(session_id)
        self._revocations.add([Revocation("sid", session_id, self._window())])

    def session_of(self, token):
        if not isinstance(token, str) or not REFRESH_TOKEN.fullmatch(token):
            return None
        return self._store.session_of(refresh_hash(token))

    def bound_key(self, session_id):
        """The thumbprint of the DPoP key session_id's tokens are bound to, or None."""
        return self._store.session_key(session_id)

    def revoke_access_token(self, jti, expires_at):
        self._revocations.add([Revocation("jti", jti, expires_at + self._settings.revocation_margin_seconds)])

    def revoke_user(self, username):
        """Every token of username issued until now: sessions ended, access tokens refused."""
        ended = self._store.revoke_user_sessions(username)
        self._revocations.add([Revocation("sub", username, self._window(), cutoff=int(self._clock()))])
        return ended
