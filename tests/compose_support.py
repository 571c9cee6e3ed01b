"""Reading and checking Compose files, for the static tests of docker-compose.yml and its scale-out overlay."""

import re
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


# The non-root user each image is built for, by repository: what a service of it sets as `user:`.
UNPRIVILEGED_IMAGES = {"jwtgate": "10001:10001", "nginxinc/nginx-unprivileged": "101:101", "redis": "999:999",
                       "postgres": "999:999"}


def assert_locked_down(services):
    """Every service: a non-root user, a read-only root, no capabilities, no new privileges."""
    for name, service in services.items():
        user = service.get("user", "")
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), (name, user)
        repository = service["image"].split("@")[0].rsplit(":", 1)[0]
        assert UNPRIVILEGED_IMAGES[repository] == user, (name, service["image"])
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert "cap_add" not in service and "privileged" not in service, name
