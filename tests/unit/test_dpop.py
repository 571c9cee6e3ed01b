"""DPoP proofs (RFC 9449) in-process: the proof checker with a fake clock, the replay caches, /verify."""

import asyncio
import dataclasses
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import falcon.testing
import pytest

from jwtgate.fetch import Response
from jwtgate.replay import MemoryReplayCache, SqliteReplayCache
from tests.dpop_support import DpopKey, b64url, hmac_signed, unsigned
from tests.fakes import FakeClock
from tests.minting import RsaSigner, claims, rs256, with_overrides
from validator.app import create_app, make_nonces
from validator.config import Settings
from jwtgate import dpop as dpop_module
from jwtgate.dpop import (Nonces, ProofChecker, ProofRejected, access_token_hash, normalize_uri, request_urls,
                          thumbprint)
from jwtgate.keys import JwksSource


URL = "https://api.example/api/protected/"
# VALIDATOR_PUBLIC_ORIGINS of the /verify tests: URL's origin.
ORIGINS = frozenset({"https://api.example"})
TOKEN = "header.claims.signature"
ALGS = 'algs="ES256 RS256"'


@pytest.fixture(scope="module")
def key():
    return DpopKey.generate("ES256")


@pytest.fixture(scope="module")
def rsa_key():
    return DpopKey.generate("RS256")


@pytest.fixture
def checker(clock):
    return ProofChecker(iat_window=60, clock=clock)


def proof_claims(clock, **overrides):
    base = {"jti": "jti-1", "htm": "GET", "htu": URL, "iat": int(clock()), "ath": access_token_hash(TOKEN)}
    return with_overrides(base, overrides)


def proof_header(key, **overrides):
    return {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.jwk, **overrides}


def check(checker, proof, method="GET", url=URL, token=TOKEN):
    return checker.check(proof, method=method, urls={normalize_uri(url)}, access_token=token)


def rejected(checker, proof, detail, **kwargs):
    with pytest.raises(ProofRejected) as caught:
        check(checker, proof, **kwargs)
    assert caught.value.detail == detail


@pytest.mark.parametrize("which", ["key", "rsa_key"])
def test_valid_proof_gives_the_key_thumbprint(which, request, checker, clock):
    signer = request.getfixturevalue(which)
    result = check(checker, signer.sign(proof_header(signer), proof_claims(clock)))
    assert result.jkt == signer.thumbprint
    assert (result.jti, result.iat) == ("jti-1", int(clock()))


def test_thumbprint_matches_rfc_7638_example():
    # RFC 7638 section 3.1.
    example = {
        "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
             "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnY"
             "b9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw"
             "0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_iat_window_both_ways(checker, key, clock):
    for iat, ok in ((clock() - 60, True), (clock() + 60, True), (clock() - 61, False), (clock() + 61, False)):
        proof = key.sign(proof_header(key), proof_claims(clock, iat=int(iat)))
        if ok:
            check(checker, proof)
        else:
            rejected(checker, proof, "iat_window")
    clock.tick(120)
    rejected(checker, key.sign(proof_header(key), proof_claims(clock, iat=int(clock()) - 120)), "iat_window")


@pytest.mark.parametrize("overrides, detail", [
    ({"htm": "POST"}, "htm"),
    ({"htm": "get"}, "htm"),
    ({"htm": None}, "htm"),
    ({"htu": "https://api.example/api/admin/"}, "htu"),
    ({"htu": "https://other.example/api/protected/"}, "htu"),
    ({"htu": "http://api.example/api/protected/"}, "htu"),
    ({"htu": None}, "htu"),
    ({"htu": "/api/protected/"}, "htu"),
    ({"ath": None}, "ath"),
    ({"ath": access_token_hash("another.token.value")}, "ath"),
    ({"jti": None}, "jti"),
    ({"jti": ""}, "jti"),
    ({"jti": 7}, "jti"),
    ({"iat": None}, "iat"),
    ({"iat": "1800000000"}, "iat"),
    ({"iat": True}, "iat"),
])
def test_claims_must_match_the_request(checker, key, clock, overrides, detail):
    rejected(checker, key.sign(proof_header(key), proof_claims(clock, **overrides)), detail)


@pytest.mark.parametrize("htu", [
    "https://API.example:443/api/protected/?q=1",
    "HTTPS://api.example/api/%70rotected/",
    "https://api.example/api/x/../protected/#frag",
    "https://api.example/api/./protected/",
])
def test_htu_is_compared_after_rfc_3986_normalisation(checker, key, clock, htu):
    check(checker, key.sign(proof_header(key), proof_claims(clock, htu=htu)))


def test_request_urls_are_the_public_origins_with_the_path_nginx_passes():
    origins = {"http://127.0.0.1:8080", "https://Example.COM:443"}
    assert request_urls(origins, "/api/protected/a?b=c") == {"http://127.0.0.1:8080/api/protected/a",
                                                             "https://example.com/api/protected/a"}
    assert request_urls(origins, "/api/./x/../protected/") == {"http://127.0.0.1:8080/api/protected/",
                                                               "https://example.com/api/protected/"}
    assert request_urls(origins, "x") == request_urls(origins, "") == request_urls(origins, None) == frozenset()
    assert request_urls((), "/x") == frozenset()
    assert normalize_uri("ftp://h/x") is None
    assert normalize_uri("http://user@h/x") is None


def test_header_rules(checker, key, rsa_key, clock):
    good = proof_claims(clock)
    rejected(checker, key.sign(proof_header(key, typ="JWT"), good), "typ")
    rejected(checker, key.sign({"alg": "ES256", "jwk": key.jwk}, good), "typ")
    rejected(checker, key.sign(proof_header(key, alg="ES384"), good), "alg")
    rejected(checker, key.sign(proof_header(key, kid="k1"), good), "header_member")
    rejected(checker, key.sign(proof_header(key, jku="https://evil/jwks"), good), "header_member")
    rejected(checker, key.sign({"typ": "dpop+jwt", "alg": "ES256"}, good), "jwk_missing")
    # The header names RS256 over an EC key, or ES256 over an RSA key.
    rejected(checker, key.sign(proof_header(key, alg="RS256"), good), "jwk_alg_mismatch")
    rejected(checker, rsa_key.sign(proof_header(rsa_key, alg="ES256"), good), "jwk_alg_mismatch")
    rejected(checker, key.sign(proof_header(key, jwk={**key.jwk, "crv": "P-384"}), good), "jwk_invalid")


def test_private_key_in_the_header_is_refused(checker, key, clock):
    numbers = key.private_key.private_numbers()
    private = {**key.jwk, "d": b64url(numbers.private_value.to_bytes(32, "big"))}
    rejected(checker, key.sign(proof_header(key, jwk=private), proof_claims(clock)), "jwk_private")


def test_none_and_hmac_are_refused(checker, key, clock):
    good = proof_claims(clock)
    rejected(checker, unsigned(proof_header(key, alg="none"), good), "malformed")
    rejected(checker, unsigned(proof_header(key, alg="none"), good, b"sig"), "alg")
    rejected(checker, hmac_signed(proof_header(key, alg="HS256"), good, b"k" * 32), "alg")
    # An HMAC keyed with the public JWK's own text, the classic key confusion.
    rejected(checker, hmac_signed(proof_header(key, alg="HS256"), good, json.dumps(key.jwk).encode()), "alg")


def test_a_client_key_is_built_once_and_the_built_keys_are_bounded(checker, key, clock):
    first = check(checker, key.sign(proof_header(key), proof_claims(clock, jti="a")))
    # Members besides the required ones do not shape the key, nor make another entry.
    again = check(checker, key.sign(proof_header(key, jwk={**key.jwk, "use": "sig"}), proof_claims(clock, jti="b")))
    assert first.jkt == again.jkt == key.thumbprint
    assert len(checker._keys) == 1
    # A stream of new keys evicts older ones; an evicted key is built again when it comes back.
    for number in range(dpop_module._BUILT_KEYS + 5):
        other = DpopKey.generate("ES256")
        check(checker, other.sign(proof_header(other), proof_claims(clock, jti=f"k{number}")))
    assert len(checker._keys) == dpop_module._BUILT_KEYS
    assert check(checker, key.sign(proof_header(key), proof_claims(clock, jti="c"))).jkt == key.thumbprint
    # A built key never vouches for a signature by another key that names it.
    thief = DpopKey.generate("ES256")
    rejected(checker, thief.sign(proof_header(key), proof_claims(clock, jti="d")), "signature")


def test_signature_by_another_key_than_the_header_names(checker, key, clock):
    other = DpopKey.generate("ES256")
    rejected(checker, other.sign(proof_header(key), proof_claims(clock)), "signature")


@pytest.mark.parametrize("signature", [b"\x00" * 64, b"", b"\x00", b"\x00" * 32 + b"\x01" * 32, b"\xff" * 64])
def test_psychic_and_degenerate_ecdsa_signatures(checker, key, clock, signature):
    # CVE-2022-21449: r = s = 0 passes a broken ECDSA verify; and signatures of the wrong length.
    genuine = key.sign(proof_header(key), proof_claims(clock))
    forged = genuine.rsplit(".", 1)[0] + "." + b64url(signature)
    rejected(checker, forged, "malformed" if not signature else "signature")


@pytest.mark.parametrize("proof", ["", "a.b", "a.b.c.d", "!", "eyJ.eyJ.sig,second.proof.here", "x" * 5000])
def test_malformed_proofs(checker, proof):
    with pytest.raises(ProofRejected):
        check(checker, proof)


def test_duplicate_json_members_are_malformed(checker, key, clock):
    header = json.dumps(proof_header(key))[:-1] + ', "typ": "dpop+jwt"}'
    signing_input = f"{b64url(header)}.{b64url(json.dumps(proof_claims(clock)))}"
    proof = f"{signing_input}.{b64url(key._signer.sign(signing_input.encode()))}"
    rejected(checker, proof, "malformed")


def test_no_ath_needed_without_an_access_token(checker, key, clock):
    proof = key.sign(proof_header(key), proof_claims(clock, ath=None, htm="POST"))
    assert checker.check(proof, method="POST", urls={normalize_uri(URL)}).jkt == key.thumbprint


def test_memory_replay_cache(clock):
    cache = MemoryReplayCache(clock)
    assert cache.first_use(b"a", clock() + 10)
    assert not cache.first_use(b"a", clock() + 10)
    assert cache.first_use(b"b", clock() + 10)
    clock.tick(11)
    assert cache.first_use(b"a", clock() + 10)


def test_sqlite_replay_cache_is_shared_between_instances(tmp_path, clock):
    first, second = SqliteReplayCache(tmp_path / "r.db", clock), SqliteReplayCache(tmp_path / "r.db", clock)
    assert first.first_use(b"k" * 32, clock() + 61)
    assert not second.first_use(b"k" * 32, clock() + 61)
    assert not first.first_use(b"k" * 32, clock() + 61)
    assert second.first_use(b"j" * 32, clock() + 61)
    assert (tmp_path / "r.db").stat().st_mode & 0o777 == 0o600


def test_sqlite_replay_cache_waits_out_another_writer(tmp_path, clock):
    cache = SqliteReplayCache(tmp_path / "r.db", clock)
    assert cache.first_use(b"a" * 32, clock() + 61)
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")   # another worker, mid-write
    released = threading.Timer(0.3, other.execute, ("COMMIT",))
    released.start()
    started = time.monotonic()
    try:
        # Retried (not failed, not answered before the lock is free), then refused or accepted as usual.
        assert cache.first_use(b"b" * 32, clock() + 61)
        assert time.monotonic() - started >= 0.25
        assert not cache.first_use(b"b" * 32, clock() + 61)
    finally:
        released.join()
        other.close()


# /verify in-process: the binding rules and the challenges.

@pytest.fixture(scope="module")
def signer():
    return RsaSigner(kid="key-1")


@pytest.fixture
def client(signer, clock):
    def fetch(url, *, unix_socket=None, timeout=None):
        return Response(200, {}, json.dumps(signer.jwks()).encode())

    keys = JwksSource("http://auth/jwks", fetch=fetch, clock=clock)
    asyncio.run(keys.refresh())
    settings = Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                        verdict_max_age_seconds=5, public_origins=ORIGINS)
    return falcon.testing.TestClient(create_app(settings, keys=keys, clock=clock))


ORIGINAL = {"X-Original-Method": "GET", "X-Original-URI": "/api/protected/?page=2"}


def bound_token(signer, key, clock):
    return rs256(signer, claims(clock(), cnf={"jkt": key.thumbprint}))


def verify(client, token, scheme="DPoP", proof=None):
    headers = {**ORIGINAL, "Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return client.simulate_get("/verify", headers=headers)


def assert_dpop_denied(result, reason, error="invalid_dpop_proof"):
    assert result.status_code == 401
    assert result.headers["X-Auth-Error"] == reason
    challenge = result.headers["WWW-Authenticate"]
    assert challenge.startswith(f'DPoP realm="jwtgate", error="{error}"') and challenge.endswith(ALGS), challenge


def test_bound_token_with_a_proof_passes_and_is_never_cacheable(client, signer, key, clock):
    token = bound_token(signer, key, clock)
    for jti in ("one", "two"):
        result = verify(client, token, proof=key.proof("GET", URL, token, iat=int(clock()), jti=jti))
        assert result.status_code == 200, result.headers
        assert result.headers["X-User-Id"] == "alice"
        # The Nginx micro-cache keys on Authorization: a bound token's verdict must never be stored.
        assert result.headers["Cache-Control"] == "no-store"
    # An unbound bearer token still gets its max-age.
    plain = rs256(signer, claims(clock()))
    assert verify(client, plain, scheme="Bearer").headers["Cache-Control"].startswith("max-age=")


def test_the_proof_is_checked_on_cached_verdicts_too(client, signer, key, clock):
    token = bound_token(signer, key, clock)
    proof = key.proof("GET", URL, token, iat=int(clock()))
    assert verify(client, token, proof=proof).status_code == 200
    assert_dpop_denied(verify(client, token, proof=proof), "dpop_replayed")
    assert_dpop_denied(verify(client, token), "invalid_dpop_proof")
    assert_dpop_denied(verify(client, token, proof=key.proof("POST", URL, token, iat=int(clock()))),
                       "invalid_dpop_proof")


def test_bound_token_as_bearer_or_without_proof_is_refused(client, signer, key, clock):
    token = bound_token(signer, key, clock)
    assert_dpop_denied(verify(client, token, scheme="Bearer", proof=key.proof("GET", URL, token)), "dpop_required",
                       error="invalid_token")
    assert_dpop_denied(verify(client, token, scheme="dpop"), "invalid_dpop_proof")


def test_a_proof_made_for_another_server_is_refused_whatever_host_the_client_sends(client, signer, key, clock):
    # RFC 9449 section 4.3: htu names this gateway (VALIDATOR_PUBLIC_ORIGINS), not the Host the client chose.
    token = bound_token(signer, key, clock)
    elsewhere = "http://rs-a.example/api/protected/"
    spoofed = {**ORIGINAL, "Authorization": f"DPoP {token}", "X-Original-Scheme": "http",
               "X-Original-Host": "rs-a.example", "Host": "rs-a.example"}
    result = client.simulate_get("/verify", headers={**spoofed, "DPoP": key.proof("GET", elsewhere, token,
                                                                                  iat=int(clock()), jti="a")})
    assert_dpop_denied(result, "invalid_dpop_proof")
    # Control: the same request with a proof for our own origin passes.
    result = client.simulate_get("/verify", headers={**spoofed, "DPoP": key.proof("GET", URL, token,
                                                                                  iat=int(clock()), jti="b")})
    assert result.status_code == 200, result.headers


def test_each_configured_public_origin_is_accepted_and_no_other(signer, key, clock):
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, json.dumps(signer.jwks()).encode()),
                      clock=clock)
    asyncio.run(keys.refresh())
    origins = frozenset({"https://api.example", "http://127.0.0.1:8080"})
    client = falcon.testing.TestClient(
        create_app(Settings(jwks_url="http://auth/jwks", public_origins=origins), keys=keys, clock=clock))
    token = bound_token(signer, key, clock)
    for index, (htu, status) in enumerate([
        ("https://api.example/api/protected/", 200),
        ("http://127.0.0.1:8080/api/protected/", 200),
        ("HTTP://127.0.0.1:8080/api/./protected/?q=1", 200),
        ("http://127.0.0.1:8081/api/protected/", 401),
        ("http://api.example/api/protected/", 401),
        ("https://api.example/api/admin/", 401),
        ("https://api.example.evil/api/protected/", 401),
    ]):
        result = verify(client, token, proof=key.proof("GET", htu, token, iat=int(clock()), jti=f"j{index}"))
        assert result.status_code == status, htu


def test_without_public_origins_every_bound_token_is_refused(signer, key, clock):
    # Never the client's Host instead: a standalone validator without the setting refuses DPoP.
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, json.dumps(signer.jwks()).encode()),
                      clock=clock)
    asyncio.run(keys.refresh())
    client = falcon.testing.TestClient(create_app(Settings(jwks_url="http://auth/jwks"), keys=keys, clock=clock))
    token = bound_token(signer, key, clock)
    headers = {**ORIGINAL, "X-Original-Scheme": "https", "X-Original-Host": "api.example",
               "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", URL, token, iat=int(clock()))}
    assert_dpop_denied(client.simulate_get("/verify", headers=headers), "invalid_dpop_proof")
    # Bearer tokens are untouched.
    assert verify(client, rs256(signer, claims(clock())), scheme="Bearer").status_code == 200


def test_public_origins_setting_is_read_and_checked():
    from jwtgate.settings import ConfigError

    base = {"VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks"}
    assert Settings.from_env(base).public_origins == frozenset()
    settings = Settings.from_env({**base, "VALIDATOR_PUBLIC_ORIGINS": " https://api.example  http://127.0.0.1:8080 "})
    assert settings.public_origins == {"https://api.example", "http://127.0.0.1:8080"}
    for bad in ("api.example", "https://api.example/", "ftp://api.example", "https://api.example/x"):
        with pytest.raises(ConfigError, match="VALIDATOR_PUBLIC_ORIGINS"):
            Settings.from_env({**base, "VALIDATOR_PUBLIC_ORIGINS": bad})


@pytest.mark.parametrize(("origins", "warned"), [(None, True), ("https://api.example", False)])
def test_a_validator_without_public_origins_says_so_at_start_up(tmp_path, origins, warned):
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(root),
           "JWTGATE_DATA_DIR": str(tmp_path), "VALIDATOR_JWKS_URL": "http://127.0.0.1:9/jwks",
           **({"VALIDATOR_PUBLIC_ORIGINS": origins} if origins else {})}
    result = subprocess.run([sys.executable, "-c", "from validator.app import get_app; get_app()"], env=env,
                            cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    warnings = [json.loads(line)["event"] for line in result.stderr.splitlines()
                if line.startswith("{") and json.loads(line)["level"] == "warning"
                and "PUBLIC_ORIGINS" in json.loads(line)["event"]]
    assert warnings == (["VALIDATOR_PUBLIC_ORIGINS is not set: every DPoP-bound token is refused (RFC 9449 section"
                         " 4.3: a proof's htu must name the gateway's public origin)",
                         "VALIDATOR_PUBLIC_ORIGINS is not set: no protected resource metadata is served and 401"
                         " challenges name none (RFC 9728: the resource identifier is the gateway's public origin)"]
                        if warned else [])


def test_a_proof_waiting_for_the_replay_cache_does_not_hold_up_other_requests(signer, key, clock, tmp_path):
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, json.dumps(signer.jwks()).encode()),
                      clock=clock)
    replay = SqliteReplayCache(tmp_path / "replay.db", clock)
    app = create_app(Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                              public_origins=ORIGINS), keys=keys, replay=replay,
                     clock=clock)
    token = bound_token(signer, key, clock)
    bound = {**ORIGINAL, "Authorization": f"DPoP {token}", "DPoP": key.proof("GET", URL, token, iat=int(clock()))}
    plain = {"Authorization": f"Bearer {rs256(signer, claims(clock()))}"}
    assert replay.first_use(b"x" * 32, clock() + 61)   # the file exists
    other = sqlite3.connect(tmp_path / "replay.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")   # another worker, mid-write

    async def scenario():
        async with falcon.testing.ASGIConductor(app) as conductor:
            waiting = asyncio.create_task(conductor.simulate_get("/verify", headers=bound))
            await asyncio.sleep(0.1)
            answered = await asyncio.wait_for(conductor.simulate_get("/verify", headers=plain), 1.0)
            assert answered.status_code == 200
            assert not waiting.done()
            other.execute("COMMIT")
            assert (await asyncio.wait_for(waiting, 5.0)).status_code == 200

    try:
        asyncio.run(scenario())
    finally:
        other.close()


def test_stolen_token_with_the_thiefs_own_proof(client, signer, key, clock):
    token = bound_token(signer, key, clock)
    thief = DpopKey.generate("ES256")
    assert_dpop_denied(verify(client, token, proof=thief.proof("GET", URL, token, iat=int(clock()))),
                       "invalid_dpop_proof")


def test_unbound_token_with_the_dpop_scheme_is_refused(client, signer, key, clock):
    token = rs256(signer, claims(clock()))
    assert_dpop_denied(verify(client, token, proof=key.proof("GET", URL, token)), "dpop_unbound",
                       error="invalid_token")


@pytest.mark.parametrize("cnf", [{"jkt": "short"}, {"x5t#S256": "a" * 43}, "jkt", {"jkt": "a" * 43, "other": 1}])
def test_unenforceable_confirmation_claims_are_refused(client, signer, key, clock, cnf):
    token = rs256(signer, claims(clock(), cnf=cnf))
    result = verify(client, token, scheme="Bearer")
    assert result.status_code == 401 and result.headers["X-Auth-Error"] == "invalid_claims"


# Server nonces (RFC 9449 sections 8 and 9).

NONCE_SECRET = b"n" * 32


def test_a_nonce_lasts_at_least_one_lifetime_and_at_most_about_two(clock):
    nonces = Nonces(NONCE_SECRET, 30, clock)
    clock.tick(30 - clock() % 30)      # the start of a slot
    nonce = nonces.current()
    assert re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", nonce)    # section 8.1: NQCHAR only
    clock.tick(29)
    assert nonces.current() == nonce and nonces.valid(nonce)
    clock.tick(1)                      # the next slot: a new nonce, the last one still good
    assert nonces.current() != nonce
    assert nonces.valid(nonce) and nonces.valid(nonces.current())
    clock.tick(30)                     # one slot further: gone
    assert not nonces.valid(nonce)


def test_only_our_own_nonces_pass(clock):
    nonces = Nonces(NONCE_SECRET, 30, clock)
    nonce = nonces.current()
    slot, mac = nonce.split(".")
    later = Nonces(NONCE_SECRET, 30, FakeClock(clock() + 150)).current()    # genuine, for five slots on
    forged = [
        Nonces(b"m" * 32, 30, clock).current(), f"{slot}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{int(slot) + 1}.{mac}", later, nonce + ".", " " + nonce, nonce.upper(), "", ".", slot, mac,
        None, 7, ["x"], {"n": nonce}, "9" * 40 + "." + mac, f"0{slot}.{mac}",
    ]
    for value in forged:
        assert not nonces.valid(value), value
    assert nonces.valid(nonce)


def test_the_key_file_gives_every_worker_the_same_nonces(tmp_path, clock):
    settings = Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate", dpop_nonce_seconds=30,
                        dpop_nonce_key_file=str(tmp_path / "data" / "dpop-nonce.key"))
    first, second = make_nonces(settings, clock), make_nonces(settings, clock)
    assert first.current() == second.current()
    assert (tmp_path / "data" / "dpop-nonce.key").stat().st_mode & 0o777 == 0o600
    configured = make_nonces(dataclasses.replace(settings, dpop_nonce_secret=NONCE_SECRET), clock)
    assert configured.current() == Nonces(NONCE_SECRET, 30, clock).current() != first.current()
    assert make_nonces(dataclasses.replace(settings, dpop_nonce_seconds=0), clock) is None


@pytest.fixture
def nonce_client(signer, clock):
    keys = JwksSource("http://auth/jwks", fetch=lambda url, **_: Response(200, {}, json.dumps(signer.jwks()).encode()),
                      clock=clock)
    asyncio.run(keys.refresh())
    settings = Settings(jwks_url="http://auth/jwks", provider_preset="jwtgate",
                        dpop_nonce_seconds=30, dpop_nonce_secret=NONCE_SECRET,
                        public_origins=ORIGINS)
    return falcon.testing.TestClient(create_app(settings, keys=keys, clock=clock))


def test_a_proof_without_our_nonce_is_answered_with_one(nonce_client, signer, key, clock):
    token = bound_token(signer, key, clock)
    refused = verify(nonce_client, token, proof=key.proof("GET", URL, token, iat=int(clock()), jti="first"))
    assert_dpop_denied(refused, "use_dpop_nonce", error="use_dpop_nonce")
    nonce = refused.headers["DPoP-Nonce"]
    assert nonce == Nonces(NONCE_SECRET, 30, clock).current()
    # The refused proof used up nothing: its jti passes once it carries the nonce.
    allowed = verify(nonce_client, token, proof=key.proof("GET", URL, token, iat=int(clock()), jti="first",
                                                           nonce=nonce))
    assert allowed.status_code == 200, allowed.headers
    assert allowed.headers["DPoP-Nonce"] == nonce
    assert_dpop_denied(verify(nonce_client, token, proof=key.proof("GET", URL, token, iat=int(clock()), jti="first",
                                                                   nonce=nonce)), "dpop_replayed")
    for wrong in ("1.AAAAAAAAAAAAAAAAAAAAAA", nonce[:-1], Nonces(b"m" * 32, 30, clock).current()):
        assert_dpop_denied(verify(nonce_client, token, proof=key.proof("GET", URL, token, iat=int(clock()),
                                                                       nonce=wrong)),
                           "use_dpop_nonce", error="use_dpop_nonce")


def test_a_stale_nonce_is_answered_with_a_fresh_one(nonce_client, signer, key, clock):
    token = bound_token(signer, key, clock)
    nonce = Nonces(NONCE_SECRET, 30, clock).current()
    clock.tick(90)
    refused = verify(nonce_client, token, proof=key.proof("GET", URL, token, iat=int(clock()), nonce=nonce))
    assert_dpop_denied(refused, "use_dpop_nonce", error="use_dpop_nonce")
    assert refused.headers["DPoP-Nonce"] != nonce
    fresh = key.proof("GET", URL, token, iat=int(clock()), nonce=refused.headers["DPoP-Nonce"])
    assert verify(nonce_client, token, proof=fresh).status_code == 200


def test_nonces_change_no_other_refusal(nonce_client, signer, key, clock):
    token = bound_token(signer, key, clock)
    nonce = Nonces(NONCE_SECRET, 30, clock).current()
    thief = DpopKey.generate("ES256")
    # A thief's own proof is refused as invalid before any nonce is asked for, with or without one.
    for proof in (thief.proof("GET", URL, token, iat=int(clock())), thief.proof("GET", URL, token, nonce=nonce)):
        refused = verify(nonce_client, token, proof=proof)
        assert_dpop_denied(refused, "invalid_dpop_proof")
        assert refused.headers["DPoP-Nonce"] == nonce
    assert_dpop_denied(verify(nonce_client, token, proof=key.proof("POST", URL, token, nonce=nonce)),
                       "invalid_dpop_proof")
    # Bearer tokens neither need nor get a nonce.
    plain = verify(nonce_client, rs256(signer, claims(clock())), scheme="Bearer")
    assert plain.status_code == 200 and "DPoP-Nonce" not in plain.headers


def test_without_nonces_no_nonce_is_asked_for_or_sent(client, signer, key, clock):
    token = bound_token(signer, key, clock)
    allowed = verify(client, token, proof=key.proof("GET", URL, token, iat=int(clock())))
    assert allowed.status_code == 200 and "DPoP-Nonce" not in allowed.headers
    refused = verify(client, token)
    assert refused.status_code == 401 and "DPoP-Nonce" not in refused.headers
