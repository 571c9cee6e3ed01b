"""The login page in a real headless browser: tests/browser/login.spec.mjs (Playwright, Debian's chromium).

The stack is the one `make run` starts; the script gets its URL and the demo user's credentials in
its environment and prints one line per step. A missing chromium, node or playwright-core fails the
test with how to install it: CI installs them (.ci/run, `make test`), so a skip would hide a gap.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import start_stack


ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "browser" / "login.spec.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _require_browser_tools():
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is missing: run 'apt-get install chromium' (Debian's package; .ci/run does)")
    node = shutil.which("node")
    if node is None:
        problems.append("node is missing: run 'apt-get install nodejs npm'")
    if not (ROOT / "node_modules" / "playwright-core" / "package.json").exists():
        problems.append("node_modules/playwright-core is missing: run 'npm ci' (make test does)")
    if problems:
        pytest.fail("the browser test cannot run:\n  " + "\n  ".join(problems), pytrace=False)
    return node


# `make run` turns Secure off (plain http); Compose keeps it on, which browsers accept from 127.0.0.1.
@pytest.mark.parametrize("cookie_secure", ["0", "1"])
@pytest.mark.timeout(240)
def test_login_page_in_a_headless_browser(tmp_path_factory, cookie_secure):
    node = _require_browser_tools()
    running = start_stack(tmp_path_factory, "browser", AUTH_COOKIE_SECURE=cookie_secure)
    try:
        screenshots = tmp_path_factory.mktemp("screenshots")
        try:
            result = subprocess.run(
                [node, str(SCRIPT)],
                env={**os.environ, "JWTGATE_URL": running.url, "JWTGATE_USERNAME": running.username,
                     "JWTGATE_PASSWORD": running.password, "JWTGATE_COOKIE_SECURE": cookie_secure,
                     "CHROMIUM": CHROMIUM, "SCREENSHOT_DIR": str(screenshots)},
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )
        except subprocess.TimeoutExpired as timeout:
            pytest.fail(f"login.spec.mjs ran over {timeout.timeout}s:\n{timeout.stdout or ''}{timeout.stderr or ''}",
                        pytrace=False)
    finally:
        running.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"login.spec.mjs exited {result.returncode} (screenshots: {screenshots}):\n{output}"
    assert " 0 failed" in result.stdout.splitlines()[-1], output
