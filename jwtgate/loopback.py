"""A minimal HTTP GET over TCP or a unix socket, for JWKS fetches and readiness checks."""

import http.client
import socket
import urllib.parse


class UnixConnection(http.client.HTTPConnection):
    """HTTPConnection that dials a unix socket instead of host:port."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def http_get(url, *, unix_socket=None, timeout=2.0, max_bytes=1 << 20, headers=None):
    """GET url (via unix_socket when given); return (status, body bytes). Raises OSError on failure."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if unix_socket:
        connection = UnixConnection(unix_socket, timeout)
    elif parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        raise OSError(f"unsupported URL scheme {parts.scheme!r}")
    try:
        connection.request("GET", target, headers={"Host": parts.netloc or "localhost", **(headers or {})})
        response = connection.getresponse()
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise OSError(f"response larger than {max_bytes} bytes")
        return response.status, body
    except http.client.HTTPException as error:
        raise OSError(f"bad HTTP response: {type(error).__name__}") from error
    finally:
        connection.close()
