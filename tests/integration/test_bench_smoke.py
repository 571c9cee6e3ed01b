"""`bench/run.py --tiny` runs end to end and writes results.json with every scenario (no timings asserted)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def test_tiny_bench_writes_every_scenario(tmp_path):
    assert shutil.which("wrk"), "wrk is not installed: `make wrk` (or apt-get install wrk); .ci/run installs it"
    result = subprocess.run([sys.executable, "-m", "bench.run", "--tiny", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    names = {row["scenario"] for row in results["table"]}
    assert names == {"no-auth", "floor", "external-floor", "one-token", "provider-b", "tokens-200", "provider-b-200",
                     "invalid", "provider-b-invalid", "micro-cache", "dpop", "tokens-2k"}
    for row in results["table"]:
        assert row["rps"] > 0 and row["socket_errors"] == 0, row
        assert row["vs_external"] > 0 and row["vs_no_auth"] > 0, row
        # Every protected scenario with valid tokens (DPoP: each proof used once) got the static file, and
        # the zero-cost auth server allowed every request of its floor; invalid ones got only 401s. The second
        # provider's valid tokens passing proves the validator found its key set on the zero-cost server.
        assert (row["non_2xx"] > 0) == (row["scenario"] in ("invalid", "provider-b-invalid")), row
    assert results["machine"]["cores"] >= 1 and "nginx" in results["machine"]["nginx"]
