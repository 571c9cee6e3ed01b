"""`make e2e`: start the stack as `make demo` does, run the Postman collection with Newman, stop the stack.

The stack is `python -m launcher run --oidc-demo` itself, in the background on a free loopback port (or
--listen), the OpenID provider demo on another, with its own data directory under build/. Readiness is
read from its output (the demo client's `client_id:` and `client_secret:` lines, the `username:` and
`password:` lines) and then from /healthz, each with a deadline. The stack is stopped on success,
failure, Ctrl-C or SIGTERM. Credentials and tokens go to Newman only, never to this script's output.
"""

import argparse
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from launcher import oidc_demo

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
DATA_DIR = BUILD / "e2e"
JUNIT = BUILD / "newman" / "junit.xml"
COLLECTION = ROOT / "postman" / "jwtgate.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "jwtgate.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
# Past any VALIDATOR_LEEWAY_SECONDS the validator accepts (at most 300), so the token is expired for sure.
EXPIRED_SECONDS_AGO = 600
_TRUE = {"1", "true", "yes", "on"}
_CREDENTIALS = ("client_id", "client_secret", "username", "password")
_SECRETS = ("client_secret", "password")


class E2EError(Exception):
    """The stack or Newman could not be run; the message says which and why."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: stop the stack and exit."""


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _die_with_parent():
    # The stack runs in its own session, so the terminal's Ctrl-C reaches only us and we stop it in
    # order; PR_SET_PDEATHSIG still stops it if this script is killed outright.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_listen():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class RunningStack:
    """`python -m launcher run` as a child process, with the lines it prints."""

    def __init__(self, listen, environ, oidc_listen):
        self.url = f"http://{listen}"
        self.oidc_issuer = f"http://{oidc_listen}"
        self.environ = environ
        self.process = subprocess.Popen(
            [sys.executable, "-m", "launcher", "run", "--listen", listen, "--oidc-demo", "--oidc-demo-listen",
             oidc_listen],
            cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def credentials(self, deadline):
        """Wait for the demo client's and the first demo user's lines; echo the others (never a secret).

        Returns {"client_id", "client_secret", "username", "password"}: the launcher prints the client first.
        """
        found = {}
        while "password" not in found:
            try:
                line = self._lines.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise E2EError("the stack printed no demo login before the deadline") from None
                continue
            if line is None:
                raise E2EError(f"the stack exited with status {self.process.wait()} before it was ready")
            key, _, value = line.partition(": ")
            if key in _CREDENTIALS and value and key not in found:
                found[key] = value
                if key in _SECRETS:
                    print(f"{key}: (passed to newman)", flush=True)
                    continue
            print(line, flush=True)
        if "client_secret" not in found:
            raise E2EError("the stack printed no client_secret of the OpenID provider demo")
        return found

    def wait_healthy(self, deadline):
        while True:
            if self.process.poll() is not None:
                raise E2EError(f"the stack exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise E2EError(f"{self.url}/healthz did not answer 200 before the deadline")
            time.sleep(0.1)

    def stop(self):
        """SIGINT, as Ctrl-C in `make run` would; SIGKILL the session if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def mint_expired_token(username, environ):
    """A token signed with the stack's key that expired EXPIRED_SECONDS_AGO (`auth_api tokens mint`)."""
    result = subprocess.run(
        [sys.executable, "-m", "auth_api", "tokens", "mint", username, "--expires-in", f"-{EXPIRED_SECONDS_AGO}"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        raise E2EError(f"auth_api tokens mint failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def newman_command(newman, url, username, password, expired_token, demo_login, oidc):
    """oidc: the demo provider's {"issuer", "client_id", "client_secret"}."""
    variables = {
        "baseUrl": url,
        "username": username,
        "password": password,
        "expiredToken": expired_token,
        "demoLogin": "1" if demo_login else "0",
        "oidcIssuer": oidc["issuer"],
        "oidcClientId": oidc["client_id"],
        "oidcClientSecret": oidc["client_secret"],
        "oidcAudience": oidc_demo.AUDIENCE,
        "oidcOtherAudience": oidc_demo.OTHER_AUDIENCE,
    }
    command = [str(newman), "run", str(COLLECTION), "--environment", str(ENVIRONMENT)]
    for name, value in variables.items():
        command += ["--env-var", f"{name}={value}"]
    return command + [
        "--reporters", "cli,junit",
        "--reporter-junit-export", str(JUNIT),
        "--timeout-request", "10000",
    ]


def junit_counts(path):
    """(assertions passed, assertions failed) from Newman's JUnit report."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    tests = failures = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return tests - failures, failures


def log_tails(lines=20):
    logs = DATA_DIR / "logs"
    for path in sorted(logs.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            sys.stderr.write(f"--- {path.relative_to(ROOT)} (last {len(tail)} lines)\n" + "\n".join(tail) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.run_newman", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", help="gateway address (default: a free port on 127.0.0.1)")
    parser.add_argument("--newman", default=str(NEWMAN), help="the newman executable (default: node_modules)")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for the stack")
    args = parser.parse_args(argv)
    if not Path(args.newman).exists():
        sys.stderr.write(f"e2e: {args.newman} is missing: run `npm ci` (make e2e does)\n")
        return 2

    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    # A fresh data directory each run: new key, new demo password, no state from an earlier run.
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True, mode=0o700)
    JUNIT.parent.mkdir(parents=True, exist_ok=True)
    JUNIT.unlink(missing_ok=True)
    environ = {**os.environ, "JWTGATE_DATA_DIR": str(DATA_DIR), "PYTHONUNBUFFERED": "1"}
    demo_login = environ.get("AUTH_DEMO_LOGIN", "").strip().lower() in _TRUE

    stack = None
    status = 1
    try:
        stack = RunningStack(args.listen or free_listen(), environ, free_listen())
        deadline = time.monotonic() + args.ready_timeout
        found = stack.credentials(deadline)
        username, password = found["username"], found["password"]
        oidc = {"issuer": stack.oidc_issuer, "client_id": found["client_id"], "client_secret": found["client_secret"]}
        stack.wait_healthy(deadline)
        # The launcher's issuer (the gateway's URL, unless AUTH_ISSUER says otherwise), or the token
        # would be refused as wrong_issuer rather than expired.
        expired_token = mint_expired_token(username, {"AUTH_ISSUER": stack.url, **environ})
        ready = time.monotonic()
        print(f"e2e: stack ready at {stack.url} in {ready - started:.1f}s; running newman", flush=True)
        command = newman_command(args.newman, stack.url, username, password, expired_token, demo_login, oidc)
        newman = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL)
        try:
            status = newman.wait()
        finally:
            if newman.poll() is None:
                newman.terminate()
                newman.wait(timeout=10)
    except E2EError as error:
        sys.stderr.write(f"e2e: {error}\n")
        log_tails()
        status = 1
    except Interrupted as interruption:
        sys.stderr.write(f"e2e: {interruption}: stopping the stack\n")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stopped = stack.stop()
            if stopped != 0 and status == 0:
                sys.stderr.write(f"e2e: the stack exited with status {stopped} when stopped\n")
                status = 1
    if JUNIT.exists():
        passed, failed = junit_counts(JUNIT)
        print(f"e2e: junit report {JUNIT.relative_to(ROOT)}, stack logs {(DATA_DIR / 'logs').relative_to(ROOT)}")
        print(f"e2e: wall time {time.monotonic() - started:.1f}s")
        print(f"newman: {passed} passed, {failed} failed")
    return status


if __name__ == "__main__":
    sys.exit(main())
