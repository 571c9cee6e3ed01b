"""Reading and checking Compose files, for the static tests of docker-compose.yml and its scale-out overlay."""

import subprocess
import sys

from ruamel.yaml import YAML


def load_yaml(path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def check_compose_schema(path):
    """check-jsonschema's run against the Compose Specification (vendor.compose-spec): no Docker daemon needed."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60,
    )
