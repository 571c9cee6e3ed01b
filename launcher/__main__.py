"""`python -m launcher run`: the whole gateway on 127.0.0.1 until Ctrl-C; `validator`: the validator alone."""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from jwtgate.serving import bind_and_workers
from jwtgate.settings import ConfigError, data_dir
from launcher import oidc_demo
from launcher.stack import Stack, StackError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m launcher")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start Nginx, the validator, the auth API and the backend")
    run.add_argument("--listen", default=os.environ.get("JWTGATE_LISTEN", "127.0.0.1:8080"),
                     help="gateway address (JWTGATE_LISTEN, default 127.0.0.1:8080)")
    run.add_argument("--oidc-demo", action="store_true",
                     help="also start an OpenID provider demo and trust its tokens beside ours (make demo)")
    run.add_argument("--oidc-demo-listen", default=os.environ.get("JWTGATE_OIDC_DEMO_LISTEN", "127.0.0.1:9090"),
                     help="the demo provider's loopback address (JWTGATE_OIDC_DEMO_LISTEN, default 127.0.0.1:9090)")
    commands.add_parser("validator", help="run the validator alone under gunicorn, for your own Nginx and provider "
                                          "(VALIDATOR_* settings; VALIDATOR_BIND says where it listens)")
    args = parser.parse_args(argv)
    if args.command == "validator":
        return validator()

    demo = None
    if args.oidc_demo:
        demo = oidc_demo.OidcDemo(os.path.join(data_dir(os.environ), "oidc-demo"), args.oidc_demo_listen)
    stack = Stack(data_dir(os.environ), listen=args.listen, oidc_demo=demo)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stack.start()
        credentials = stack.demo_credentials()
    except StackError as error:
        stack.stop()
        sys.stderr.write(f"jwtgate: {error}\n")
        return 1
    print(f"jwtgate is running at {stack.url}  (Ctrl-C stops it)")
    print(f"  login:     curl -s -X POST {stack.url}/api/auth/login -H 'Content-Type: application/json' "
          f"-d '{{\"username\":\"{credentials[0][0]}\",\"password\":\"<password>\"}}'")
    print(f"  public:    {stack.url}/api/public/")
    print(f"  protected: {stack.url}/api/protected/  (Authorization: Bearer <access_token>)")
    print(f"  admin:     {stack.url}/api/admin/  (role admin)   orders: {stack.url}/api/orders/  "
          "(GET orders:read, else orders:write)")
    print(f"  jwks:      {stack.url}/.well-known/jwks.json")
    print(f"  browser:   {stack.url}/login/  (sign in there; protected pages redirect to it)")
    print(f"  logs:      {stack.log_dir}")
    if demo is not None:
        print_demo(stack, demo)
    for username, password in credentials:
        print(f"demo user:\nusername: {username}\npassword: {password}")
    sys.stdout.flush()
    try:
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    sys.stderr.write(f"jwtgate: {name} exited ({process.returncode}); see {stack.log_path(name)}\n")
                    stopping.append(name)
            time.sleep(0.5)
    finally:
        stack.stop()
    return 0 if all(isinstance(reason, int) for reason in stopping) else 1


def print_demo(stack, demo):
    """How to get a token from the OpenID provider demo and call a protected route with it."""
    print(f"OpenID provider demo: {demo.issuer}  (client credentials; the gateway trusts it beside the auth API)")
    print(f"  token:     TOKEN=$(curl -s -u {demo.client_id}:<client_secret> {demo.issuer}/token "
          f"-d grant_type=client_credentials -d resource={oidc_demo.AUDIENCE} -d 'scope={oidc_demo.SCOPES}' "
          "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    print(f"  call:      curl -s {stack.url}/api/protected/ -H \"Authorization: Bearer $TOKEN\"")
    print(f"  refused:   {stack.url}/api/staff/  (accepts the auth API's tokens only: 401 wrong_issuer)")
    print(f"demo client:\nclient_id: {demo.client_id}\nclient_secret: {demo.client_secret}")


def validator():
    """Check the validator's settings, then become gunicorn with validator/gunicorn.conf.py (no auth API, no Nginx)."""
    from validator.config import Settings

    try:
        Settings.from_env(os.environ)
    except ConfigError as error:
        sys.stderr.write(f"jwtgate: {error}\n")
        return 2
    # The metrics directory and the default unix socket live in the data directory.
    os.makedirs(data_dir(os.environ), mode=0o700, exist_ok=True)
    (bind,), _ = bind_and_workers("VALIDATOR_", "validator", 1)
    if bind.startswith("unix:"):
        os.makedirs(os.path.dirname(bind[len("unix:"):]), mode=0o700, exist_ok=True)
    config = Path(__file__).resolve().parent.parent / "validator" / "gunicorn.conf.py"
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config)])


if __name__ == "__main__":
    sys.exit(main())
