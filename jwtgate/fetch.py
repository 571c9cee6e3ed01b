"""Key material from the outside world: one bounded HTTP(S) GET, and which URLs may be fetched at all.

HTTPS always verifies the server's certificate (against the system's CAs, or only those of a CA
bundle file when one is given); plain http:// reaches loopback hosts only unless a caller allows it.
HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured as urllib and curl read them (loopback hosts too:
list them in NO_PROXY when a proxy is set). Redirects are errors: a key set moved elsewhere is a
configuration change, not something to follow. The size and the whole exchange's time are bounded.
"""

import base64
import http.client
import io
import ipaddress
import os
import re
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

from jwtgate.loopback import UnixConnection

DEFAULT_MAX_BYTES = 512 * 1024
DEFAULT_TIMEOUT_SECONDS = 5.0
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")
_MAX_AGE = re.compile(r'(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(?:$|,)', re.IGNORECASE)
_NO_REUSE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:$|,|=)", re.IGNORECASE)


class FetchError(OSError):
    """A fetch failed or was refused; the message names the URL's host and path, never a credential."""


@dataclass(frozen=True)
class Response:
    """A response to a GET: status, headers (lower-case names, repeated fields joined by ", ") and the body."""

    status: int
    headers: dict
    body: bytes

    def max_age(self):
        """Seconds the body may be reused (RFC 9111 section 5.2.2.1 max-age; 0 for no-store or no-cache), or None."""
        directives = self.headers.get("cache-control", "")
        if _NO_REUSE.search(directives):
            return 0
        match = _MAX_AGE.search(directives)
        return int(match.group(1)) if match else None


def is_loopback(host):
    """True for localhost and literal addresses in 127.0.0.0/8 or ::1; no name is resolved."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address in _LOOPBACK_V4 if address.version == 4 else address == _LOOPBACK_V6


def describe(url):
    """The URL as errors and logs may show it: scheme, host, port and path, no userinfo or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if _port(parts) is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _port(parts):
    try:
        return parts.port
    except ValueError:
        return None


def check_url(url, *, allow_http=False):
    """Refuse a URL we must never fetch key material from; return its urlsplit() parts.

    https:// anywhere, http:// to loopback hosts only unless `allow_http`; no credentials in the URL.
    """
    if not isinstance(url, str):
        raise FetchError("URL is not a string")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchError(f"{describe(url)}: not an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise FetchError(f"{describe(url)}: credentials in the URL are not accepted")
    if parts.fragment:
        raise FetchError(f"{describe(url)}: URL has a fragment")
    try:
        parts.port
    except ValueError:
        raise FetchError(f"{describe(url)}: invalid port") from None
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise FetchError(f"{describe(url)}: plain http:// is only allowed to loopback hosts")
    return parts


def _proxy(parts, environ):
    """The proxy's (host, port, headers) for this URL, or None (RFC 9110 section 9.3.6 CONNECT for https)."""
    for name in (f"{parts.scheme}_proxy", f"{parts.scheme.upper()}_PROXY"):
        value = environ.get(name)
        if value:
            break
    else:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY")
    if no_proxy and urllib.request.proxy_bypass_environment(parts.netloc, {"no": no_proxy}):
        return None
    proxy = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise FetchError(f"{parts.scheme.upper()}_PROXY: only http:// proxies are supported")
    headers = {}
    if proxy.username is not None:
        credentials = f"{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return proxy.hostname, _port(proxy) or 80, headers


def _context(ca_file):
    """Verification always on: create_default_context checks the chain and the host name."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as error:
        raise FetchError(f"CA bundle {ca_file}: {_reason(error)}") from error


def _connection(parts, target, unix_socket, timeout, ca_file, environ):
    """The connection for this URL, the request target to send on it and any proxy headers."""
    if unix_socket:
        return UnixConnection(unix_socket, timeout), target, {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = _proxy(parts, environ)
    if parts.scheme == "https":
        context = _context(ca_file)
        if proxy is None:
            return http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context), target, {}
        connection = http.client.HTTPSConnection(proxy[0], proxy[1], timeout=timeout, context=context)
        connection.set_tunnel(parts.hostname, port, headers=proxy[2])
        return connection, target, {}
    if proxy is None:
        return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), target, {}
    # A plain-http proxy takes the absolute URL as the request target (RFC 9112 section 3.2.2).
    connection = http.client.HTTPConnection(proxy[0], proxy[1], timeout=timeout)
    return connection, f"{parts.scheme}://{parts.netloc}{target}", proxy[2]


def _reason(error):
    """What went wrong, from an exception of the socket, TLS or HTTP layer: no URL, no credential."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if type(error) is OSError and error.args:
        # http.client's own: "Tunnel connection failed: 407 Proxy Authentication Required".
        return str(error.args[0])[:200]
    return type(error).__name__


def _fields(message):
    """Header fields by lower-case name; repeated fields joined as RFC 9110 section 5.3 allows."""
    fields = {}
    for name, value in message.items():
        name = name.lower()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


def _remaining(deadline, what):
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"{what}: timed out")
    return left


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side where every recv gets only what is left of the exchange's time."""

    def __init__(self, sock, deadline, what):
        super().__init__()
        self._sock, self._deadline, self._what = sock, deadline, what
        # The socket's own reader, which keeps it open until this one closes, as http.client expects.
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self):
        return True

    def readinto(self, buffer):
        self._sock.settimeout(_remaining(self._deadline, self._what))
        return self._raw.readinto(buffer)

    def close(self):
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client needs of a connected socket (sendall, makefile, close), within one deadline: a server
    trickling its status line, header fields or body a byte at a time cannot stretch the exchange."""

    def __init__(self, sock, deadline, what):
        self._sock, self._deadline, self._what = sock, deadline, what

    def sendall(self, data):
        self._sock.settimeout(_remaining(self._deadline, self._what))
        self._sock.sendall(data)

    def makefile(self, mode):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline, self._what))

    def close(self):
        self._sock.close()


def get(url, *, unix_socket=None, timeout=DEFAULT_TIMEOUT_SECONDS, ca_file=None, allow_http=False,
        max_bytes=DEFAULT_MAX_BYTES, environ=None):
    """GET url (over unix_socket when given) and return a Response; raise FetchError.

    FetchError: a refused URL, a connection, proxy or TLS failure, a redirect, a body over
    `max_bytes`, or the time running out: nothing is sent or read more than `timeout` seconds after
    the call began (connecting, TCP, a proxy's CONNECT and TLS, takes at most `timeout` a step). Any
    other status is the caller's to judge. `environ` (os.environ by default) holds the proxy settings.
    """
    what = describe(url)
    parts = urllib.parse.urlsplit(url) if unix_socket else check_url(url, allow_http=allow_http)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + timeout
    connection, target, proxy_headers = _connection(parts, target, unix_socket, timeout, ca_file,
                                                    os.environ if environ is None else environ)
    try:
        # Connecting (TCP, a proxy's CONNECT, TLS) takes `timeout` at most per step; then the deadline holds.
        connection.connect()
        connection.sock = _DeadlineSocket(connection.sock, deadline, what)
        connection.request("GET", target, headers={"Host": parts.netloc or "localhost", "Accept": "application/json",
                                                   **proxy_headers})
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise FetchError(f"{what}: redirect ({response.status}) not followed")
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise FetchError(f"{what}: response larger than {max_bytes} bytes")
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise FetchError(f"{what}: response larger than {max_bytes} bytes")
        return Response(response.status, _fields(response.headers), body)
    except FetchError:
        raise
    except TimeoutError as error:
        raise FetchError(f"{what}: timed out") from error
    except ssl.SSLCertVerificationError as error:
        raise FetchError(f"{what}: certificate not trusted ({error.verify_message})") from error
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"{what}: {_reason(error)}") from error
    finally:
        connection.close()
