"""`python -m launcher run`: the whole gateway on 127.0.0.1 until Ctrl-C."""

import argparse
import os
import signal
import sys
import time

from jwtgate.settings import data_dir
from launcher.stack import Stack, StackError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m launcher")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start Nginx, the validator, the auth API and the backend")
    run.add_argument("--listen", default=os.environ.get("JWTGATE_LISTEN", "127.0.0.1:8080"),
                     help="gateway address (JWTGATE_LISTEN, default 127.0.0.1:8080)")
    args = parser.parse_args(argv)

    stack = Stack(data_dir(os.environ), listen=args.listen)
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


if __name__ == "__main__":
    sys.exit(main())
