"""The README shows examples/nginx/minimal.conf.template as it is (tests/integration/test_dropin.py runs it)."""

import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nginx" / "minimal.conf.template"


def test_readme_shows_the_tested_file_verbatim():
    assert f"```nginx\n{EXAMPLE.read_text()}```\n" in (ROOT / "README.md").read_text()


def test_example_includes_only_shipped_snippets_and_sets_only_nginx_values():
    text = EXAMPLE.read_text()
    includes = re.findall(r"^\s*include (\S+);", text, re.MULTILINE)
    assert includes and all(path.startswith("jwtgate/") for path in includes)
    assert all((ROOT / "nginx" / "snippets" / path.removeprefix("jwtgate/")).is_file() for path in includes)
    assert set(re.findall(r"\$\{([A-Z_]+)\}", text)) == {
        "NGINX_LISTEN", "NGINX_VALIDATOR_ADDR", "NGINX_BACKEND_ADDR", "NGINX_ACCESS_LOG"}
