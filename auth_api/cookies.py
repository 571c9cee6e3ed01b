"""Browser sessions: the access and refresh tokens in HttpOnly cookies, and the Origin check that guards them."""

from datetime import datetime, timezone

import falcon

from jwtgate import credentials

ACCESS_COOKIE = "jwtgate_access"
REFRESH_COOKIE = "jwtgate_refresh"
# The refresh token goes back to the auth API only, never to the validator or the backend.
REFRESH_COOKIE_PATH = "/api/auth/"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def set_session_cookies(resp, settings, *, access_token, access_lifetime, refresh_token, refresh_lifetime):
    """Both tokens as HttpOnly, SameSite=Strict cookies that expire with the tokens."""
    # HttpOnly keeps them from page scripts (and so from XSS); SameSite=Strict keeps them off
    # every request another site starts (RFC 6265bis section 8.8).
    resp.set_cookie(ACCESS_COOKIE, access_token, max_age=access_lifetime, path="/",
                    secure=settings.cookie_secure, http_only=True, same_site="Strict")
    resp.set_cookie(REFRESH_COOKIE, refresh_token, max_age=refresh_lifetime, path=REFRESH_COOKIE_PATH,
                    secure=settings.cookie_secure, http_only=True, same_site="Strict")


def clear_session_cookies(resp, settings):
    """Expire both cookies, with the attributes they were set with so the browser matches them."""
    # An `Expires` in the past deletes a cookie (RFC 6265 section 5.3); Falcon writes no `Max-Age=0`.
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_COOKIE_PATH)):
        resp.set_cookie(name, "", expires=_EPOCH, path=path, secure=settings.cookie_secure, http_only=True,
                        same_site="Strict")


def cookie_value(req, name):
    """The first value of a cookie (the one Nginx's $cookie_ variable reads too), or None."""
    values = req.get_cookie_values(name)
    return values[0] if values else None


def same_origin(req, allowed_origins=frozenset()):
    """CSRF defence: the browser's Origin is the gateway's own (X-Jwtgate-Self-Origin, set by Nginx) or allowed."""
    # Browsers send Origin on every POST, same-origin ones included (Fetch standard, "append a request
    # Origin header"); a request without one did not come from our page.
    return credentials.same_origin(req.get_header("Origin"), req.get_header("X-Jwtgate-Self-Origin"), allowed_origins)


def cross_site_request():
    return falcon.HTTPForbidden(code="cross_site_request",
                                description="Cookie requests must come from the gateway's own origin")
