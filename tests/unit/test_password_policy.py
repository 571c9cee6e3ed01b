"""The operator password policy: length, and the shipped list of common passwords."""

import gzip
import hashlib
import importlib.resources
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auth_api import passwords


ROOT = Path(__file__).resolve().parents[2]


def test_the_list_is_package_data_with_its_license():
    data = importlib.resources.files("auth_api").joinpath("data")
    raw = data.joinpath("common-passwords.txt.gz").read_bytes()
    # The file named in COMMON-PASSWORDS-LICENSE.txt, byte for byte.
    assert hashlib.sha256(raw).hexdigest() in data.joinpath("COMMON-PASSWORDS-LICENSE.txt").read_text()
    assert len(gzip.decompress(raw).splitlines()) == len(passwords.common_passwords()) == 19_640


@pytest.mark.parametrize("password", ["qwerty123456", "QWERTY123456", "1q2w3e4r5t6y", "startfinding"])
def test_common_passwords_are_refused_in_any_case(password):
    with pytest.raises(ValueError, match="common passwords"):
        passwords.check_policy(password)


@pytest.mark.parametrize("password", ["short", "elevenchars"])
def test_short_passwords_are_refused(password):
    with pytest.raises(ValueError, match="at least 12"):
        passwords.check_policy(password)


def test_an_uncommon_long_password_passes():
    assert passwords.check_policy("violet tractor under lamplight") == "violet tractor under lamplight"


def test_the_cli_refuses_a_common_password(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "JWTGATE_DATA_DIR": str(tmp_path)}
    for command in (["users", "add", "bob", "--password-stdin"], ["users", "password", "bob", "--password-stdin"]):
        result = subprocess.run([sys.executable, "-m", "auth_api", *command], input="Password1234\n", env=env,
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, command
        assert "common passwords" in result.stderr
