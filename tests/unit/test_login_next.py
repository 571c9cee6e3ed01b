"""The login page's `next` decision, run by node: tests/browser/next_url.test.mjs (no browser, no sockets)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest


SCRIPT = Path(__file__).resolve().parents[1] / "browser" / "next_url.test.mjs"


def test_next_is_always_an_absolute_url_on_the_gateway_for_hostile_spellings():
    node = shutil.which("node")
    if node is None:
        # As tests/e2e/test_browser.py: CI installs node, so a skip would hide a gap.
        pytest.fail("node is missing: run 'apt-get install nodejs npm'", pytrace=False)
    result = subprocess.run([node, "--test", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"next_url.test.mjs exited {result.returncode}:\n{result.stdout}{result.stderr}"
    assert "# fail 0" in result.stdout and re.search(r"^# pass [1-9]", result.stdout, re.M), result.stdout
