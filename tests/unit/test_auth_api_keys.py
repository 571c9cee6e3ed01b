"""Signing keys: files, modes, kids, the JWKS, first-start generation and HS256."""

import base64
import multiprocessing
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_api import keys
from auth_api.config import Settings
from auth_api.keys import KeyFileError, KeyRing
from tests.fakes import FakeClock


PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def _b64url_int(text):
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_kid_is_the_rfc7638_thumbprint():
    # RFC 7638 §3.1: this key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    public_key = rsa.RSAPublicNumbers(65537, _b64url_int(n)).public_key()
    assert keys.public_jwk(public_key) == {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        "n": n,
        "e": "AQAB",
    }


def test_first_open_generates_one_private_key_file(tmp_path):
    ring = KeyRing.open(Settings(data_dir=str(tmp_path)), clock=FakeClock(1_700_000_000.25))
    directory = tmp_path / "keys"
    names = keys.key_files(directory)
    assert names == [f"1700000000-{ring.active.kid}.pem"]
    assert ring.active.algorithm == "RS256"
    assert _mode(directory) == 0o700
    assert _mode(directory / names[0]) == 0o600
    assert _mode(directory / ".lock") == 0o600
    pem = (directory / names[0]).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert not [name for name in os.listdir(directory) if name.startswith(".tmp-")]


def test_key_is_rsa_2048(tmp_path):
    KeyRing.open(Settings(data_dir=str(tmp_path)))
    (name,) = keys.key_files(tmp_path / "keys")
    private = serialization.load_pem_private_key((tmp_path / "keys" / name).read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048


def test_second_open_reuses_the_key(tmp_path):
    settings = Settings(data_dir=str(tmp_path))
    first = KeyRing.open(settings)
    second = KeyRing.open(settings)
    assert second.active.kid == first.active.kid
    assert len(keys.key_files(tmp_path / "keys")) == 1


def test_existing_directory_is_tightened_to_0700(tmp_path):
    (tmp_path / "keys").mkdir(mode=0o755)
    KeyRing.open(Settings(data_dir=str(tmp_path)))
    assert _mode(tmp_path / "keys") == 0o700


def test_jwks_publishes_public_members_only(tmp_path):
    ring = KeyRing.open(Settings(data_dir=str(tmp_path)))
    (key,) = ring.jwks()["keys"]
    assert set(key) == {"kty", "use", "alg", "kid", "n", "e"}
    assert not PRIVATE_MEMBERS & set(key)
    assert (key["kty"], key["use"], key["alg"], key["kid"]) == ("RSA", "sig", "RS256", ring.active.kid)
    assert key["e"] == "AQAB"
    assert _b64url_int(key["n"]).bit_length() == 2048


def test_jwks_is_a_copy(tmp_path):
    ring = KeyRing.open(Settings(data_dir=str(tmp_path)))
    ring.jwks()["keys"][0]["d"] = "leak"
    assert "d" not in ring.jwks()["keys"][0]


def test_newest_key_signs_and_every_key_is_published(tmp_path):
    clock = FakeClock(1_700_000_000.25)
    directory = str(tmp_path / "keys")
    keys.ensure_key(directory, clock=clock)
    first = KeyRing.load(directory).active.kid
    second = keys.generate_key(directory, clock=clock)  # same second: must still sort after the first
    ring = KeyRing.load(directory)
    assert ring.active.kid == second != first
    assert [key["kid"] for key in ring.jwks()["keys"]] == [second, first]
    assert keys.key_files(directory)[-1] == f"1700000001-{second}.pem"


def test_a_key_file_whose_name_lies_is_refused(tmp_path):
    directory = tmp_path / "keys"
    keys.ensure_key(str(directory))
    (name,) = keys.key_files(directory)
    forged = f"{name[:11]}{'A' * 43}.pem"
    os.rename(directory / name, directory / forged)
    with pytest.raises(KeyFileError):
        KeyRing.load(str(directory))


def _open_in_process(data_dir, barrier, results):
    barrier.wait()
    results.put(KeyRing.open(Settings(data_dir=data_dir)).active.kid)


def test_concurrent_first_start_generates_one_key(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = 4
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=_open_in_process, args=(str(tmp_path), barrier, results)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    kids = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(set(kids)) == 1
    assert len(keys.key_files(tmp_path / "keys")) == 1


def test_hs256_mode_has_no_kid_no_key_files_and_an_empty_jwks(tmp_path):
    ring = KeyRing.open(Settings(data_dir=str(tmp_path), hs256_secret=b"k" * 32))
    assert ring.active.kid is None
    assert ring.active.algorithm == "HS256"
    assert ring.jwks() == {"keys": []}
    assert not (tmp_path / "keys").exists()
