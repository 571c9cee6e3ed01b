"""Bench credentials: valid and forged token files (the stack's key, a second provider's), and DPoP proofs."""

import base64
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

from jwtgate.loopback import http_get

# Proofs made for a DPoP run: enough for this many requests a second (wrk stops when they run out).
DPOP_PROOFS_PER_SECOND = 20_000


def _mint_chunk(pem, kid, overrides, start, count, exp):
    from tests.minting import RsaSigner, claims, rs256

    signer = RsaSigner.from_pem(pem, kid)
    now = int(time.time())
    return [rs256(signer, claims(now, sub=f"bench-{index}", exp=exp, roles=["user"], **overrides))
            for index in range(start, start + count)]


def _exp_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def mint(stack, directory, count):
    """A file of `count` valid tokens of the stack's key and issuer; reused while they have an hour left."""
    return _mint_file(*signing_key(stack), {"iss": stack.issuer}, directory / f"valid-{count}.txt", count)


def _mint_file(pem, kid, overrides, path, count, lifetime=6 * 3600):
    """`count` tokens by the key (pem, kid), their claims as tests.minting.claims with overrides, into path."""
    stamp = path.with_suffix(".kid")
    # The key and the claims that set it apart (the issuer): a file minted for either other is minted anew.
    label = f"{kid} {json.dumps(overrides, sort_keys=True)}"
    if path.exists() and stamp.exists() and stamp.read_text() == label:
        with path.open() as handle:
            if _exp_of(handle.readline().strip()) > time.time() + 3600:
                return path
    started = time.monotonic()
    exp = int(time.time()) + lifetime
    workers = os.cpu_count() or 1
    chunk = -(-count // workers)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_mint_chunk, *zip(*[(pem, kid, overrides, start, min(chunk, count - start), exp)
                                            for start in range(0, count, chunk)]))
        tokens = [token for part in parts for token in part]
    path.write_text("\n".join(tokens) + "\n")
    stamp.write_text(label)
    print(f"  minted {count} tokens ({path.stem}) in {time.monotonic() - started:.0f}s", flush=True)
    return path


class SecondProvider:
    """The bench's second identity provider: an RSA key of its own and its JWKS, tokens shaped like the stack's."""

    # Never fetched: the validator reads this provider's keys from the jwks_uri of bench/stack.py's providers file.
    ISSUER = "https://provider-b.bench.invalid/"
    AUDIENCE = "jwtgate-api"

    def __init__(self, directory):
        """The key in directory/provider-b.pem, made on first use and kept, as the stack keeps its own."""
        from tests.minting import RsaSigner

        path = directory / "provider-b.pem"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            path.write_bytes(RsaSigner().pem)
            path.chmod(0o600)
        self.pem = path.read_bytes()
        jwk = RsaSigner.from_pem(self.pem, "").jwk
        # The same key keeps the same kid, so its token files are reused between runs.
        self.kid = "b-" + hashlib.sha256(jwk["n"].encode()).hexdigest()[:16]
        self.jwk = {**jwk, "kid": self.kid}

    def write_jwks(self, path):
        path.write_text(json.dumps({"keys": [self.jwk]}) + "\n")

    def mint(self, directory, count):
        """A file of `count` valid tokens of this provider: the stack's claims with this provider's iss and aud."""
        return _mint_file(self.pem, self.kid, {"iss": self.ISSUER, "aud": self.AUDIENCE},
                          directory / f"valid-b-{count}.txt", count)


class DpopRequests:
    """A DPoP-bound token signed with the stack's key, and fresh proofs for it, one per request."""

    def __init__(self, stack, directory):
        from examples.dpop_client import DpopKey
        from tests.minting import RsaSigner, claims, rs256

        self.key = DpopKey.generate("ES256")
        signer = RsaSigner.from_pem(*signing_key(stack))
        now = int(time.time())
        self.token = rs256(signer, claims(now, iss=stack.issuer, sub="bench-dpop", exp=now + 6 * 3600,
                                          roles=["user"], cnf={"jkt": self.key.thumbprint}))
        self.path = directory / "dpop-requests.txt"

    def write(self, url, count):
        """`count` requests for url, each with its own proof: made now, as a proof is good for a minute."""
        host = url.split("/")[2]
        workers = os.cpu_count() or 1
        chunk = -(-count // workers)
        with ProcessPoolExecutor(workers) as pool:
            parts = pool.map(_proof_chunk, *zip(*[(self.key.pem(), url, self.token, min(chunk, count - start))
                                                 for start in range(0, count, chunk)]))
            self.path.write_text("".join(f"Host: {host}\tAuthorization: DPoP {self.token}\tDPoP: {proof}\n"
                                         for part in parts for proof in part))
        return self.path


def _proof_chunk(pem, url, token, count):
    from examples.dpop_client import DpopKey
    from cryptography.hazmat.primitives import serialization

    key = DpopKey(serialization.load_pem_private_key(pem, password=None))
    return [key.proof("GET", url, token) for _ in range(count)]


def invalid_from(valid_path, directory):
    """The valid tokens with the next one's signature: well-formed, each a full RSA check, each refused."""
    tokens = valid_path.read_text().split()
    forged = [token[:token.rindex(".")] + tokens[(i + 1) % len(tokens)][tokens[(i + 1) % len(tokens)].rindex("."):]
              for i, token in enumerate(tokens)]
    path = directory / valid_path.name.replace("valid", "invalid", 1)
    path.write_text("\n".join(forged) + "\n")
    return path


def signing_key(stack):
    """(PEM, kid) of the key the stack's auth API signs with: bench tokens are minted with it."""
    return sorted((stack.data_dir / "keys").glob("*.pem"))[-1].read_bytes(), kid_of(stack)


def kid_of(stack):
    status, body = http_get(f"{stack.url}/.well-known/jwks.json", timeout=5.0)
    return json.loads(body)["keys"][0]["kid"]
