"""nginx/examples/tls.conf, rendered with a generated self-signed certificate and run by a real Nginx on
loopback in front of the shared stack's services: protocols, HTTP/2, headers, and the whole flow."""

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from launcher.stack import NGINX_DIR, render
from tests.services import free_port


HSTS = "max-age=63072000"


def self_signed(directory):
    """A P-256 key and a one-day certificate for localhost and 127.0.0.1; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class TlsNginx:
    """Nginx running the rendered example, with upstreams on a running stack's unix sockets."""

    def __init__(self, prefix, stack):
        self.prefix = prefix
        self.tls_port, self.http_port = free_port(), free_port()
        self.cert, key = self_signed(prefix)
        for directory in (prefix / "conf.d", prefix / "tmp", prefix / "logs"):
            directory.mkdir(parents=True, exist_ok=True)
        self.error_log = prefix / "logs" / "error.log"
        variables = {
            "NGINX_PREFIX": str(prefix), "NGINX_WORKER_DIR": str(prefix), "NGINX_ERROR_LOG": str(self.error_log),
            "NGINX_WORKER_PROCESSES": "1",
            "NGINX_USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
            "NGINX_SNIPPETS_DIR": str(NGINX_DIR / "snippets"), "NGINX_ACCESS_LOG": str(prefix / "logs" / "access.log"),
            "NGINX_TLS_LISTEN": f"127.0.0.1:{self.tls_port}", "NGINX_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "NGINX_SERVER_NAME": "localhost", "NGINX_TLS_CERT": str(self.cert), "NGINX_TLS_KEY": str(key),
        }
        (prefix / "nginx.conf").write_text(render((NGINX_DIR / "local" / "nginx.conf.template").read_text(), variables))
        # What the example expects at http level, as gateway.conf.template defines it.
        snippets = NGINX_DIR / "snippets"
        (prefix / "conf.d" / "http.conf").write_text(
            f"include {snippets}/jwtgate-http.conf;\ninclude {snippets}/jwtgate-limits.conf;\n" + "".join(
                f"upstream jwtgate_{name} {{ server unix:{stack.socket(name)}; keepalive 4; }}\n"
                for name in ("validator", "auth_api", "backend")))
        example = (NGINX_DIR / "examples" / "tls.conf").read_text()
        (prefix / "conf.d" / "tls.conf").write_text(render(example, variables))
        self.command = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                        "-e", str(self.error_log)]
        self.process = None

    def start(self):
        check = subprocess.run(self.command + ["-t", "-q"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.error_log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, "TLS Nginx not listening:\n" + self.error_log.read_text()
                time.sleep(0.1)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def context(self, *, minimum=None, maximum=None, alpn=("h2", "http/1.1")):
        context = ssl.create_default_context(cafile=str(self.cert))
        if minimum:
            context.minimum_version = minimum
        if maximum:
            context.maximum_version = maximum
        context.set_alpn_protocols(list(alpn))
        return context

    def handshake(self, context):
        """(TLS version, ALPN protocol, cipher name) of one handshake."""
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version(), tls.selected_alpn_protocol(), tls.cipher()[0]


@pytest.fixture(scope="module")
def tls(tmp_path_factory, gateway):
    running = TlsNginx(tmp_path_factory.mktemp("tls"), gateway.stack).start()
    yield running
    running.stop()


def test_tls13_with_http2(tls):
    version, alpn, _ = tls.handshake(tls.context())
    assert (version, alpn) == ("TLSv1.3", "h2")
    # A client without ALPN h2 still gets HTTP/1.1 over the same listener.
    assert tls.handshake(tls.context(alpn=("http/1.1",)))[:2] == ("TLSv1.3", "http/1.1")


def test_tls12_only_with_forward_secret_aead_suites(tls):
    version, alpn, cipher = tls.handshake(tls.context(maximum=ssl.TLSVersion.TLSv1_2))
    assert (version, alpn) == ("TLSv1.2", "h2")
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    # A client offering only CBC suites on TLS 1.2 finds nothing it may use.
    context = tls.context(maximum=ssl.TLSVersion.TLSv1_2)
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA")
    with pytest.raises(ssl.SSLError):
        tls.handshake(context)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_old_protocols_are_refused_by_the_server(tls, version):
    context = tls.context(minimum=version, maximum=version)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        tls.handshake(context)
    if refused.value.reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip(f"this OpenSSL cannot offer {version.name} at all, so the server's refusal is not observable")
    # The server's own refusal: a protocol_version alert, not a client-side limitation.
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"), refused.value


def test_security_headers_and_hsts(tls):
    with httpx.Client(base_url=f"https://localhost:{tls.tls_port}", verify=tls.context(alpn=("http/1.1",))) as client:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert response.headers["strict-transport-security"] == HSTS
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "server" not in response.headers or response.headers["server"] == "nginx"


def test_the_whole_flow_over_tls(tls, gateway):
    with httpx.Client(base_url=f"https://localhost:{tls.tls_port}", verify=tls.context(alpn=("http/1.1",))) as client:
        login = client.post("/api/auth/login", json={"username": gateway.username, "password": gateway.password})
        assert login.status_code == 200
        assert login.headers["strict-transport-security"] == HSTS
        token = login.json()["access_token"]
        protected = client.get("/api/protected/tls", headers={"Authorization": f"Bearer {token}"})
        assert protected.status_code == 200 and protected.json()["userId"] == gateway.username
        assert protected.headers["strict-transport-security"] == HSTS
        refused = client.get("/api/protected/tls", headers={"Authorization": "Bearer not-a-jwt"})
        assert refused.status_code == 401 and refused.json()["error"] == "malformed"


def test_plain_http_only_redirects(tls):
    response = httpx.get(f"http://127.0.0.1:{tls.http_port}/api/protected/x?y=1", follow_redirects=False)
    assert response.status_code == 301
    # The certificate's name, whatever Host the client sent.
    assert response.headers["location"] == "https://localhost/api/protected/x?y=1"
    forged = httpx.get(f"http://127.0.0.1:{tls.http_port}/x", headers={"Host": "evil.example"}, follow_redirects=False)
    assert forged.headers["location"] == "https://localhost/x"
    assert httpx.get(f"http://127.0.0.1:{tls.http_port}/api/public/").status_code == 301
