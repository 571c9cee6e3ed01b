"""The gunicorn side of multiprocess metrics: where the files go, and the hooks that tidy them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jwtgate import metrics


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", ["validator", "auth_api"])
@pytest.mark.parametrize("exists", [True, False], ids=["data-dir", "no-data-dir"])
def test_the_config_points_workers_at_the_data_dir(tmp_path, service, exists):
    data = tmp_path / "data"
    if exists:
        data.mkdir()
    code = ("import json, os, runpy; c = runpy.run_path(f'{sys.argv[1]}/gunicorn.conf.py');"
            "print(json.dumps([os.environ['PROMETHEUS_MULTIPROC_DIR'], callable(c['on_starting']),"
            " callable(c['child_exit'])]))")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "JWTGATE_DATA_DIR": str(data),
           "VALIDATOR_JWKS_URL": "http://localhost/jwks"}
    result = subprocess.run([sys.executable, "-c", f"import sys; {code}", service], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [str(data / "metrics" / service), True, True]
    # Created inside an existing data directory (the app's import needs it); never the data directory itself.
    assert (data / "metrics" / service).is_dir() == exists
    assert data.exists() == exists


def test_an_operators_own_directory_wins(tmp_path):
    environ = {"JWTGATE_DATA_DIR": str(tmp_path), metrics.ENV: "/elsewhere"}
    assert metrics.use_multiprocess_dir("validator", environ) == "/elsewhere"


def test_on_starting_leaves_the_directory_empty_and_private(tmp_path):
    target = tmp_path / "metrics" / "validator"
    target.mkdir(parents=True)
    (target / "counter_123.db").write_bytes(b"old run")
    metrics.clean_multiprocess_dir(str(target))
    assert list(target.iterdir()) == []
    assert target.stat().st_mode & 0o777 == 0o700
