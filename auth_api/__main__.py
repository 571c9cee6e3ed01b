"""Command line: python -m auth_api init | users add|list|password|disable|revoke|demo | keys rotate | tokens mint
| db upgrade|backup.

`tokens mint` signs a token with the data directory's own key, for tests (an already-expired token
for the Postman collection, say): whoever can run it can read that key anyway, and the server's
settings are untouched.
"""

import argparse
import logging
import logging.config
import os
import sqlite3
import sys
import time

from auth_api import passwords
from auth_api.storage import UNAVAILABLE, open_revocations
from auth_api.backup import backup
from auth_api.config import Settings
from auth_api.keys import KeyFileError, KeyRing, keys_dir, rotate
from auth_api.sessions import Sessions
from auth_api.store import MIGRATIONS, SchemaOutOfDate, UnknownUser, UserExists, UserStore
from auth_api.tokens import mint_access_token
from jwtgate.logs import fingerprint, logconfig_dict
from jwtgate.settings import ConfigError

DEMO_ROLES = ["user"]
DEMO_SCOPES = ["orders:read"]
# The second demo user can do what the first cannot: /api/admin/ and writing orders.
DEMO_ADMIN_ROLES = ["admin", "user"]
DEMO_ADMIN_SCOPES = ["orders:read", "orders:write"]
# The longest lifetime the server itself may be configured with (AUTH_ACCESS_TOKEN_TTL_SECONDS), either way.
MAX_EXPIRES_IN_SECONDS = 86400

logger = logging.getLogger("auth_api.cli")


def expires_in_seconds(text):
    """--expires-in: whole seconds from now, negative for a token that has already expired."""
    try:
        seconds = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {text!r}") from None
    if abs(seconds) > MAX_EXPIRES_IN_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between -{MAX_EXPIRES_IN_SECONDS} and {MAX_EXPIRES_IN_SECONDS}")
    return seconds


def build_parser(prog="python -m auth_api"):
    parser = argparse.ArgumentParser(
        prog=prog,
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
    users.add_parser("disable", help="disable a user and revoke every token issued to them").add_argument("name")
    users.add_parser("revoke", help="revoke every token of a user issued until now (all sessions)").add_argument(
        "name"
    )
    password = users.add_parser("password", help="set a new password (generated unless --password-stdin); "
                                                 "ends every session")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_parser("demo", help="create or reset the demo users (AUTH_DEMO_USER and <it>-admin) with fresh passwords")

    db = commands.add_parser("db", help="the databases").add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND")
    db.add_parser("upgrade", help="apply the schema migrations the database (SQLite or AUTH_DATABASE_URL) "
                                  "has not seen; safe to repeat, and to run from several replicas at once")
    db.add_parser("backup", help="copy auth.db and revocations.db into directory PATH (online, while the "
                                 "auth API runs; replaces an earlier backup there)").add_argument("path")

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="KEYS_COMMAND"
    )
    keys.add_parser("rotate", help="publish a new signing key now; it signs after AUTH_KEY_ACTIVATION_DELAY_SECONDS")

    tokens = commands.add_parser("tokens", help="mint access tokens for tests").add_subparsers(
        dest="tokens_command", required=True, metavar="TOKENS_COMMAND"
    )
    mint = tokens.add_parser(
        "mint",
        help="print an access token for an existing user, signed with the data directory's active key",
    )
    mint.add_argument("name")
    mint.add_argument(
        "--expires-in",
        type=expires_in_seconds,
        default=None,
        metavar="SECONDS",
        help="lifetime from now (default AUTH_ACCESS_TOKEN_TTL_SECONDS); 0 or negative: already expired",
    )
    return parser


def _sessions(settings):
    return Sessions(settings, store=UserStore.open(settings), revocations=open_revocations(settings))


def cmd_init(settings, args):
    store = UserStore.open(settings, upgrade=True)
    keyring = KeyRing.open(settings)
    open_revocations(settings)
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
    ended = _sessions(settings).revoke_user(args.name)
    print(f"disabled {args.name}; ended {ended} sessions and revoked every token issued until now")


def cmd_users_revoke(settings, args):
    if UserStore.open(settings).get_user(args.name) is None:
        raise UnknownUser(f"no user {args.name!r}")
    ended = _sessions(settings).revoke_user(args.name)
    print(f"ended {ended} sessions of {args.name} and revoked every token issued until now")


def cmd_users_password(settings, args):
    if args.password_stdin:
        password = passwords.check_policy(sys.stdin.read().rstrip("\r\n"))
    else:
        password = passwords.generate()
    UserStore.open(settings).set_password(args.name, passwords.hash(password))
    # A new password ends every session the old one opened.
    ended = _sessions(settings).revoke_user(args.name)
    print(f"password changed for {args.name}; ended {ended} sessions")
    if not args.password_stdin:
        print(f"password: {password}")


def cmd_keys_rotate(settings, args):
    if settings.hs256_secret is not None:
        raise ValueError("HS256 mode has no key files to rotate: change AUTH_HS256_SECRET instead")
    kid = rotate(keys_dir(settings.data_dir), activation_delay=settings.key_activation_delay_seconds,
                 retention=settings.access_token_ttl_seconds + settings.revocation_margin_seconds)
    print(f"new key {kid}: published now, signing in {settings.key_activation_delay_seconds}s")


def cmd_users_demo(settings, args):
    store = UserStore.open(settings)
    for username, roles, scopes in ((settings.demo_user, DEMO_ROLES, DEMO_SCOPES),
                                    (f"{settings.demo_user}-admin", DEMO_ADMIN_ROLES, DEMO_ADMIN_SCOPES)):
        password = passwords.generate()
        store.put_user(username, passwords.hash(password), roles=roles, scopes=scopes)
        print(f"username: {username}")
        print(f"password: {password}")


def cmd_db_upgrade(settings, args):
    store = UserStore.open(settings, upgrade=True)
    print(f"schema version: {store.schema_version()} of {len(MIGRATIONS)} ({store.database.engine})")
    store.close()


def cmd_db_backup(settings, args):
    if settings.database_url:
        raise ValueError("db backup copies the SQLite files; back PostgreSQL up with its own tools (pg_dump)")
    for path in backup(settings.data_dir, args.path):
        print(f"backed up {os.path.basename(path)} to {path}")


def cmd_tokens_mint(settings, args):
    # The existing key only: a key generated here would sign tokens the running stack has never published.
    if settings.hs256_secret is not None:
        keyring = KeyRing.from_secret(settings.hs256_secret)
    else:
        keyring = KeyRing.load(keys_dir(settings.data_dir), now=time.time(),
                               activation_delay=settings.key_activation_delay_seconds)
    user = UserStore.open(settings).get_user(args.name)
    if user is None:
        raise UnknownUser(f"no user {args.name!r}")
    if user.disabled:
        raise ValueError(f"user {args.name!r} is disabled")
    token, _ = mint_access_token(
        keyring, settings, subject=user.username, roles=user.roles, scope=user.scope, now=time.time,
        expires_in=args.expires_in,
    )
    logger.info(
        "token minted",
        extra={"user": user.username, "result": "ok", "reason": "cli", "kid": keyring.active.kid,
               "token_fp": fingerprint(token)},
    )
    # The one place a whole token is printed, deliberately: it is the command's output.
    print(token)


COMMANDS = {
    ("init", None): cmd_init,
    ("users", "add"): cmd_users_add,
    ("users", "list"): cmd_users_list,
    ("users", "disable"): cmd_users_disable,
    ("users", "revoke"): cmd_users_revoke,
    ("users", "password"): cmd_users_password,
    ("keys", "rotate"): cmd_keys_rotate,
    ("users", "demo"): cmd_users_demo,
    ("tokens", "mint"): cmd_tokens_mint,
    ("db", "upgrade"): cmd_db_upgrade,
    ("db", "backup"): cmd_db_backup,
}


def main(argv=None, environ=None, prog="python -m auth_api"):
    args = build_parser(prog).parse_args(argv)
    try:
        settings = Settings.from_env(os.environ if environ is None else environ)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logging.config.dictConfig(logconfig_dict("auth_api", settings.log_level))
    subcommand = (getattr(args, "users_command", None) or getattr(args, "tokens_command", None)
                  or getattr(args, "keys_command", None) or getattr(args, "db_command", None))
    command = COMMANDS[(args.command, subcommand)]
    try:
        command(settings, args)
    except (ValueError, UserExists, UnknownUser, KeyFileError, OSError, sqlite3.Error, SchemaOutOfDate,
            *UNAVAILABLE) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
