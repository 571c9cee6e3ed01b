"""The systemd units and environment files in examples/systemd/, read as systemd reads them (the subset they use)."""

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNITS_DIR = ROOT / "examples" / "systemd"
UNITS = {"validator": UNITS_DIR / "jwtgate-validator.service", "auth_api": UNITS_DIR / "jwtgate-auth-api.service"}
# The example beside each unit of the file its EnvironmentFile= names.
ENV_FILES = {"/etc/jwtgate/validator.env": UNITS_DIR / "validator.env",
             "/etc/jwtgate/auth-api.env": UNITS_DIR / "auth-api.env"}


def directives(path):
    """{section: {key: [values in order]}}; comments and blank lines skipped, no line continuations."""
    sections, current = {}, None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def env_file(path):
    """NAME=value lines of an EnvironmentFile (no quotes, no continuations in ours)."""
    found = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip()
    return found


def service_environment(unit):
    """The service's environment as systemd builds it: Environment= lines, then the EnvironmentFile= over them."""
    service = directives(unit)["Service"]
    environ = {}
    for line in service.get("Environment", []):
        for assignment in shlex.split(line):
            name, _, value = assignment.partition("=")
            environ[name] = value
    for path in service.get("EnvironmentFile", []):
        environ.update(env_file(ENV_FILES[path.lstrip("-")]))
    return environ
