"""Send an attack through the real Nginx and prove it was refused: status, challenge, body, backend."""

import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwtgate.reasons import REASONS

PROTECTED = "/api/protected/"
PUBLIC = "/api/public/"

# What a 401 body may say: the reason catalogue Nginx maps from X-Auth-Error, plus the map's default.
CATALOGUE = {code: (description if error is None else f"Invalid token: {description}")
             for code, (error, description) in REASONS.items()}
CATALOGUE["invalid_token"] = "Invalid token"

# Words that only appear when something leaks: key material, tokens, stack traces, server internals.
LEAK_WORDS = ("BEGIN", "PRIVATE", "Traceback", "Exception", 'File "', "eyJ", "jose", "python", "gunicorn",
              "uvicorn", "falcon", "secret")


def _metadata(origin):
    """RFC 9728 section 5.1: every challenge names the gateway's protected resource metadata."""
    return f'resource_metadata="{origin}/.well-known/oauth-protected-resource"'


def missing_token_challenge(origin, realm="jwtgate"):
    """The challenge of a request without credentials: no error, only the realm and the metadata."""
    return f'Bearer realm="{realm}", {_metadata(origin)}'


def allowed_challenges(origin, realm="jwtgate"):
    """Every WWW-Authenticate value the gateway at origin may send (RFC 6750 section 3)."""
    metadata = _metadata(origin)
    values = {missing_token_challenge(origin, realm)}
    for error, description in REASONS.values():
        if error is not None:
            values.add(f'Bearer realm="{realm}", error="{error}", error_description="{description}", {metadata}')
    values.add(f'Bearer realm="{realm}", error="invalid_token", error_description="Invalid token", {metadata}')
    return values


@dataclass
class Answer:
    """One HTTP response as the client saw it, from httpx or from a raw socket."""

    status: int
    headers: list = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def from_httpx(cls, response):
        return cls(response.status_code, [(name.lower(), value) for name, value in response.headers.multi_items()],
                   response.content)

    def values(self, name):
        return [value for key, value in self.headers if key == name.lower()]

    def text(self):
        head = "\n".join(f"{name}: {value}" for name, value in self.headers)
        return head + "\n\n" + self.body.decode("latin-1")

    def json(self):
        return json.loads(self.body)


def _read_body(stream, headers):
    if "chunked" in dict(headers).get("transfer-encoding", ""):
        body = b""
        while True:
            size = int(stream.readline().split(b";")[0], 16)
            if size == 0:
                while stream.readline() not in (b"\r\n", b""):
                    pass
                return body
            body += stream.read(size)
            stream.readline()
    length = dict(headers).get("content-length")
    return stream.read(int(length)) if length else b""


def raw_exchange(url, data, *, responses=1, head=False, timeout=10.0):
    """Send bytes as they are (no client normalisation) and parse up to `responses` answers."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(data)
        stream = connection.makefile("rb")
        answers = []
        for _ in range(responses):
            status_line = stream.readline()
            if not status_line:
                break
            match = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
            assert match, f"not an HTTP response: {status_line!r}"
            headers = []
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            body = b"" if head else _read_body(stream, headers)
            answers.append(Answer(int(match.group(1)), headers, body))
        return answers


class Gate:
    """The session gateway seen by an attacker: every probe checks what reached the backend."""

    def __init__(self, gateway, secrets=()):
        self.gateway = gateway
        self.url = gateway.url
        self.secrets = [value for value in secrets if value]
        self.challenges = allowed_challenges(gateway.url)

    def hits(self):
        return self.gateway.backend_hits()

    def send(self, method="GET", path=PROTECTED, *, token=None, headers=(), **kwargs):
        """Send through httpx; return (Answer, backend hits this request caused)."""
        sent = list(headers)
        if token is not None:
            sent.append(("Authorization", f"Bearer {token}"))
        before = len(self.hits())
        response = self.gateway.client.request(method, path, headers=sent, **kwargs)
        return Answer.from_httpx(response), self.hits()[before:]

    def send_raw(self, data, *, responses=1, head=False):
        """Send raw bytes; return ([Answer, ...], backend hits they caused)."""
        before = len(self.hits())
        answers = raw_exchange(self.url, data, responses=responses, head=head)
        return answers, self.hits()[before:]

    def refused(self, method="GET", path=PROTECTED, *, token=None, headers=(), leaks=(), **kwargs):
        """Send and assert a clean 401 that never reached the backend; return the Answer."""
        answer, hits = self.send(method, path, token=token, headers=headers, **kwargs)
        self.assert_refused(answer, hits, leaks=_leaks_of(token) + list(leaks), head=method == "HEAD")
        return answer

    def refused_raw(self, data, *, leaks=(), head=False):
        answers, hits = self.send_raw(data, head=head)
        assert answers, "no answer"
        self.assert_refused(answers[0], hits, leaks=list(leaks), head=head)
        return answers[0]

    def assert_refused(self, answer, hits, *, leaks=(), head=False):
        """401, no backend hit, exactly one known challenge, a catalogue JSON body, nothing leaked."""
        assert answer.status == 401, f"expected 401, got {answer.status}:\n{answer.text()}"
        assert hits == [], f"the backend saw it: {hits}"
        challenges = answer.values("www-authenticate")
        assert len(challenges) == 1, challenges
        assert challenges[0] in self.challenges, challenges[0]
        assert not [name for name, _ in answer.headers if name.startswith("x-user") or name == "x-auth-error"]
        if not head:
            assert dict(answer.headers).get("content-type") == "application/json"
            body = answer.json()
            assert set(body) == {"error", "message"}, body
            assert CATALOGUE.get(body["error"]) == body["message"], body
            assert (body["error"] == "missing_token") == (challenges[0] == missing_token_challenge(self.url))
        self.assert_no_leak(answer, leaks)

    def assert_no_leak(self, answer, leaks=()):
        text = answer.text()
        for word in (*LEAK_WORDS, *self.secrets, *leaks):
            if len(word) >= 3:
                assert word not in text, f"the response leaks {word[:20]!r}"

    def blocked(self, answer, hits, statuses):
        """A refusal Nginx itself answers (400, 405, 413...): an expected 4xx and no backend hit."""
        assert answer.status in statuses, answer.text()
        assert 400 <= answer.status < 500
        assert hits == [], f"the backend saw it: {hits}"
        self.assert_no_leak(answer)


def _leaks_of(token):
    """The parts of a token that must never be echoed: the whole, and every long segment."""
    if not token:
        return []
    return [token, *(part for part in token.split(".") if len(part) >= 8)]


class OutboundTrap:
    """A loopback HTTP server standing in for an attacker's host: serves keys, records every request."""

    def __init__(self, documents):
        self.documents = documents
        self.requests = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                trap.requests.append((self.command, self.path))
                body = trap.documents.get(self.path, b"{}")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
