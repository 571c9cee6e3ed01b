"""The docs say what the code does: settings, the reason catalogue, and links that lead somewhere."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from auth_api.config import Settings as AuthSettings
from backend.config import Settings as BackendSettings
from jwtgate.settings import ConfigError
from launcher.stack import Stack
from tests.settings_probe import RecordingEnviron
from validator.config import Settings as ValidatorSettings
from jwtgate.reasons import REASONS


ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CONFIGURATION = ROOT / "docs" / "configuration.md"
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def tables(text):
    """Every Markdown table outside code blocks, as rows of cells: the header row first, no rule row."""
    found, rows = [], None
    for line in _FENCE.sub("", text).splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if rows is None:
                rows = []
                found.append(rows)
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                rows.append(cells)
        else:
            rows = None
    return found


def documented_settings():
    """Every `NAME` in the first column of configuration.md's tables."""
    return {name for table in tables(CONFIGURATION.read_text()) for cells in table
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])}


def settings_read(tmp_path):
    """Every environment variable the services and the launcher look up, recorded as they read them."""
    names = set()
    for settings_class in (ValidatorSettings, AuthSettings, BackendSettings):
        environ = RecordingEnviron()
        try:
            settings_class.from_env(environ)
        except ConfigError:
            # An empty environment lacks required settings; EnvReader has read every name before it fails.
            pass
        names |= environ.names
    environ = RecordingEnviron()
    stack = Stack(tmp_path / "stack", environ=environ)
    stack.check_settings()
    stack.nginx_variables()
    names |= environ.names
    # A data directory that does not exist: the gunicorn configs then create no metrics directory in it.
    probe = subprocess.run([sys.executable, str(ROOT / "tests" / "settings_probe.py"), str(tmp_path / "absent")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    return names | set(json.loads(probe.stdout))


def test_every_setting_the_code_reads_is_documented_and_every_documented_one_is_read(tmp_path):
    read, documented = settings_read(tmp_path), documented_settings()
    assert {"VALIDATOR_JWKS_URL", "AUTH_BIND", "BACKEND_WORKERS", "JWTGATE_LISTEN"} <= read
    assert sorted(read - documented) == [], "read by the code, missing from docs/configuration.md"
    assert sorted(documented - read) == [], "in docs/configuration.md, read by no code"


def test_reason_table_equals_the_code_catalogue():
    (table,) = [table for table in tables((ROOT / "README.md").read_text()) if table[0][0] == "reason"]
    documented = {cells[0].strip("`"): tuple(cells[1:]) for cells in table[1:]}
    expected = {reason: ("403" if error == "insufficient_scope" else "401",
                         f"`{error}`" if error else "(none)", description)
                for reason, (error, description) in REASONS.items()}
    assert documented == expected
    assert len(table) - 1 == len(documented), "a reason listed twice"


def heading_anchors(text):
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped, spaces to hyphens)."""
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", text), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text()):
            broken.append(target)
    assert broken == []
