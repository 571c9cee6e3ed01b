"""Command line: python -m auth_api init | users add | users list | users disable | users demo."""

import argparse
import logging.config
import os
import sys

from auth_api import passwords
from auth_api.config import Settings
from auth_api.keys import KeyFileError, KeyRing
from auth_api.store import UnknownUser, UserExists, UserStore
from jwtgate.logs import logconfig_dict
from jwtgate.settings import ConfigError

DEMO_ROLES = ["user"]
DEMO_SCOPES = ["orders:read"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m auth_api",
        description="Manage auth_api's users and keys. Settings come from the environment, as for the server.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("init", help="create the data directory, database and signing key (safe to repeat)")

    users = commands.add_parser("users", help="add, list or disable users").add_subparsers(
        dest="users_command", required=True, metavar="USERS_COMMAND"
    )
    add = users.add_parser("add", help="add a user; prints a generated password unless --password-stdin")
    add.add_argument("name")
    add.add_argument("--role", action="append", default=[], dest="roles", help="a role; repeat for more")
    add.add_argument("--scope", action="append", default=[], dest="scopes", help="a scope; repeat for more")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from standard input (at least {passwords.MIN_LENGTH} characters)",
    )
    users.add_parser("list", help="list users: name, roles, scope, disabled")
    users.add_parser("disable", help="disable a user; their tokens already issued stay valid until exp").add_argument(
        "name"
    )
    users.add_parser("demo", help="create or reset the demo user (AUTH_DEMO_USER) with a fresh password")
    return parser


def cmd_init(settings, args):
    store = UserStore.open(settings)
    keyring = KeyRing.open(settings)
    os.makedirs(os.path.join(settings.data_dir, "run"), exist_ok=True)
    print(f"data directory: {settings.data_dir}")
    print(f"schema version: {store.schema_version()}")
    print(f"signing: {keyring.active.algorithm}" + (f" kid {keyring.active.kid}" if keyring.active.kid else ""))


def cmd_users_add(settings, args):
    store = UserStore.open(settings)
    if args.password_stdin:
        password = passwords.check_policy(sys.stdin.read().rstrip("\r\n"))
    else:
        password = passwords.generate()
    store.add_user(args.name, passwords.hash(password), roles=args.roles, scopes=args.scopes)
    print(f"added {args.name}")
    if not args.password_stdin:
        # Shown once, deliberately: it was generated here and is stored only as a hash.
        print(f"password: {password}")


def cmd_users_list(settings, args):
    print("username\troles\tscope\tdisabled")
    for user in UserStore.open(settings).list_users():
        print(f"{user.username}\t{','.join(user.roles)}\t{user.scope}\t{'yes' if user.disabled else 'no'}")


def cmd_users_disable(settings, args):
    UserStore.open(settings).disable_user(args.name)
    print(f"disabled {args.name}")


def cmd_users_demo(settings, args):
    password = passwords.generate()
    UserStore.open(settings).put_user(
        settings.demo_user, passwords.hash(password), roles=DEMO_ROLES, scopes=DEMO_SCOPES
    )
    print(f"username: {settings.demo_user}")
    print(f"password: {password}")


COMMANDS = {
    ("init", None): cmd_init,
    ("users", "add"): cmd_users_add,
    ("users", "list"): cmd_users_list,
    ("users", "disable"): cmd_users_disable,
    ("users", "demo"): cmd_users_demo,
}


def main(argv=None, environ=None):
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logging.config.dictConfig(logconfig_dict("auth_api", settings.log_level))
    command = COMMANDS[(args.command, getattr(args, "users_command", None))]
    try:
        command(settings, args)
    except (ValueError, UserExists, UnknownUser, KeyFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
