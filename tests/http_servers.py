"""Real HTTP servers on loopback for the key-fetch tests: plain or TLS (a CA made per test), and a counting proxy."""

import datetime
import ipaddress
import select
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Route:
    """One canned answer: status, headers and body (ended by its length or by closing), or `raw` bytes, sent
    after `delay` seconds, in `trickle`-second drips."""

    def __init__(self, body=b"", status=200, headers=(), delay=0.0, trickle=None, length=True, raw=None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.headers = dict(headers)
        self.delay = delay
        self.trickle = trickle
        self.length = length
        # The whole response as bytes, status line and header fields included, trickled like a body.
        self.raw = raw


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class LocalServer:
    """A threaded HTTP(S) server on 127.0.0.1 (or a unix socket) answering GETs from `routes` (path -> Route)."""

    def __init__(self, routes=None, tls=None, unix_socket=None):
        self.routes = dict(routes or {})
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path, Route(b"not found", status=404))
                time.sleep(route.delay)
                if route.raw is not None:
                    self.close_connection = True
                    self._trickle(route.raw, route.trickle)
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.length:
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.close_connection = True
                self.end_headers()
                self._trickle(route.body, route.trickle)

            def _trickle(self, data, seconds):
                if seconds is None:
                    self.wfile.write(data)
                    return
                for index in range(len(data)):
                    self.wfile.write(data[index:index + 1])
                    self.wfile.flush()
                    time.sleep(seconds)

            def log_message(self, *args):
                pass

        if unix_socket is not None:
            self.server = _UnixServer(unix_socket, Handler)
            self.url = "http://localhost"
            self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
            return
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://localhost:{self.port}" if tls is not None else f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class TestCA:
    """A certificate authority made for one test, and a server certificate it signs (localhost and 127.0.0.1)."""

    __test__ = False

    def __init__(self, directory, names=("localhost",), addresses=("127.0.0.1",)):
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("jwtgate test CA")
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        alternatives = [x509.DNSName(name) for name in names]
        alternatives += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
        cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        chain = directory / "server.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.load_cert_chain(chain)


class CountingProxy:
    """A forward proxy on 127.0.0.1: CONNECT tunnels and absolute-URI GETs, counted with what they asked for.

    Whatever host a request names, the proxy connects to 127.0.0.1 at its port: tests name other hosts
    and no name is ever resolved.
    """

    def __init__(self, answer=None):
        self.requests = []
        self.answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client):
        try:
            self._relay(client)
        except OSError:
            # A client that gives up mid-tunnel (a refused certificate) resets the connection: nothing to count.
            pass

    def _relay(self, client):
        with client:
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(4096)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:])
            self.requests.append((method, target, headers))
            if self.answer is not None:
                client.sendall(self.answer)
                return
            if method == "CONNECT":
                with socket.create_connection(("127.0.0.1", int(target.rsplit(":", 1)[1])), timeout=5) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(client, upstream, rest)
                return
            parts = urllib.parse.urlsplit(target)
            with socket.create_connection(("127.0.0.1", parts.port), timeout=5) as upstream:
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = "".join(f"{name}: {value}\r\n" for name, value in headers.items()
                               if name.lower() not in ("proxy-authorization", "connection"))
                upstream.sendall(f"{method} {path} HTTP/1.1\r\n{kept}Connection: close\r\n\r\n".encode() + rest)
                _pipe(client, upstream, b"")


def _pipe(client, upstream, pending):
    if pending:
        upstream.sendall(pending)
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)
