"""Driving wrk: one run of bench/wrk.lua against one URL, and the summary it prints."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


def run(url, *, connections, seconds, environ=None, headers=(), stop_after=None):
    """Run wrk once (one thread); return its BENCH summary as a dict.

    With stop_after, wrk stops after that many responses (or `seconds`, whichever comes first).
    """
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
               "-s", str(SCRIPT)]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    environ = {**os.environ, **(environ or {})}
    marker = scratch = None
    if stop_after is not None:
        scratch = Path(tempfile.mkdtemp(prefix="jwtgate-bench-"))
        marker = scratch / "done"
        environ.update(BENCH_STOP_AFTER=str(stop_after), BENCH_DONE_FILE=str(marker))
    process = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + seconds + 60
    while process.poll() is None and time.monotonic() < deadline:
        if marker is not None and marker.exists():
            process.send_signal(signal.SIGINT)   # wrk's SIGINT handler ends the run and reports
            marker = None
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    stdout, stderr = process.communicate()
    if scratch is not None:
        shutil.rmtree(scratch)
    summary = parse(stdout)
    if process.returncode != 0 or summary is None:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    return summary


def parse(stdout):
    """The `BENCH {json}` line wrk.lua's done() prints, with req/s added; None when there is none."""
    line = next((line for line in stdout.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        return None
    summary = json.loads(line[len("BENCH "):])
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    return summary
