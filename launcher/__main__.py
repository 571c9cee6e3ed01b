"""The `jwtgate` command (also `python -m launcher`): run the stack or one service, check settings, Nginx files, admin.

Exit codes: 0 done, 2 bad usage or configuration (the message names the setting), 1 a failure at run time.
"""

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import jwtgate
from jwtgate.serving import bind_and_workers
from jwtgate.settings import ConfigError, data_dir
from launcher import oidc_demo
from launcher.files import nginx_dir
from launcher.stack import Stack, StackConfigError, StackError

PROG = "jwtgate"
EPILOG = "exit status: 0 done, 2 bad usage or configuration (the message names the setting), 1 failure at run time"
# What `jwtgate nginx --install DIR` copies: the include files and templates for one's own Nginx.
NGINX_PARTS = ("snippets", "templates", "examples", "html")


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, epilog=EPILOG,
                                     description="JWT validation at the edge for stock Nginx.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {jwtgate.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", epilog=EPILOG, help="start Nginx, the validator, the auth API and the backend "
                                                          "on loopback until Ctrl-C (make run)")
    run.add_argument("--listen", default=os.environ.get("JWTGATE_LISTEN", "127.0.0.1:8080"),
                     help="gateway address (JWTGATE_LISTEN, default 127.0.0.1:8080)")
    run.add_argument("--oidc-demo", action="store_true",
                     help="also start an OpenID provider demo and trust its tokens beside ours (make demo; "
                          "a source checkout with npm ci)")
    run.add_argument("--oidc-demo-listen", default=os.environ.get("JWTGATE_OIDC_DEMO_LISTEN", "127.0.0.1:9090"),
                     help="the demo provider's loopback address (JWTGATE_OIDC_DEMO_LISTEN, default 127.0.0.1:9090)")
    commands.add_parser("validator", epilog=EPILOG,
                        help="run the validator alone under gunicorn, for your own Nginx and provider "
                             "(VALIDATOR_* settings; VALIDATOR_BIND says where it listens)")
    commands.add_parser("auth-api", epilog=EPILOG,
                        help="run the auth API alone under gunicorn (AUTH_* settings; AUTH_BIND says where it "
                             "listens); initialises its data directory first")
    nginx = commands.add_parser("nginx", epilog=EPILOG, help="print or copy the Nginx include files and templates")
    where = nginx.add_mutually_exclusive_group(required=True)
    where.add_argument("--print-dir", action="store_true", help="print the directory that holds them")
    where.add_argument("--install", metavar="DIR", type=Path,
                       help=f"copy {', '.join(NGINX_PARTS)} into DIR (created; existing files are replaced)")
    check = commands.add_parser("check", epilog=EPILOG,
                                help="check the settings in the environment without starting anything")
    check.add_argument("what", nargs="?", choices=("run", "validator", "auth-api"), default="run",
                       help="the settings of `jwtgate run` (default: the whole stack), or of one service run alone")
    check.add_argument("--listen", default=os.environ.get("JWTGATE_LISTEN", "127.0.0.1:8080"),
                       help="for `run`: the gateway address (JWTGATE_LISTEN)")
    commands.add_parser("admin", add_help=False,
                        help="users, keys, tokens and database of the auth API: `jwtgate admin --help`")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["admin"]:
        # Every word after `admin` is the auth API's own command line, --help included.
        from auth_api.__main__ import main as admin

        return admin(argv[1:], prog=f"{PROG} admin")
    args = build_parser().parse_args(argv)
    if args.command == "validator":
        return validator()
    if args.command == "auth-api":
        return auth_api()
    if args.command == "nginx":
        return nginx(args)
    if args.command == "check":
        return check(args)

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
        return 2 if isinstance(error, StackConfigError) else 1
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


def nginx(args):
    """Print where the Nginx files are, or copy them into a directory of one's own."""
    source = nginx_dir()
    if args.print_dir:
        print(source)
        return 0
    try:
        for part in NGINX_PARTS:
            shutil.copytree(source / part, args.install / part, dirs_exist_ok=True)
    except OSError as error:
        sys.stderr.write(f"jwtgate: cannot install the Nginx files into {args.install}: {error}\n")
        return 1
    print(args.install.resolve())
    return 0


def check(args):
    """Read the settings `what` would start with; 0 when they are valid, 2 with every problem named."""
    from auth_api.config import Settings as AuthSettings
    from validator.config import Settings as ValidatorSettings

    try:
        if args.what == "run":
            Stack(data_dir(os.environ), listen=args.listen).check_settings()
        else:
            (ValidatorSettings if args.what == "validator" else AuthSettings).from_env(os.environ)
    except (ConfigError, StackError) as error:
        sys.stderr.write(f"jwtgate: {error}\n")
        return 2
    print(f"jwtgate: the {args.what} settings are valid")
    return 0


def auth_api():
    """Check the auth API's settings, initialise its data directory, then become gunicorn with its config."""
    from auth_api.__main__ import main as admin

    status = admin(["init"], prog=f"{PROG} auth-api")
    if status != 0:
        return status
    return become_gunicorn("auth_api", "AUTH_")


def validator():
    """Check the validator's settings, then become gunicorn with validator/gunicorn.conf.py (no auth API, no Nginx)."""
    from validator.config import Settings

    try:
        Settings.from_env(os.environ)
    except ConfigError as error:
        sys.stderr.write(f"jwtgate: {error}\n")
        return 2
    return become_gunicorn("validator", "VALIDATOR_")


def become_gunicorn(service, prefix):
    """exec gunicorn with the service's own gunicorn.conf.py, its data directory and socket directory made."""
    # The metrics directory and the default unix socket live in the data directory.
    os.makedirs(data_dir(os.environ), mode=0o700, exist_ok=True)
    (bind,), _ = bind_and_workers(prefix, service, 1)
    if bind.startswith("unix:"):
        os.makedirs(os.path.dirname(bind[len("unix:"):]), mode=0o700, exist_ok=True)
    config = Stack.gunicorn_config(service)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config)])


if __name__ == "__main__":
    sys.exit(main())
