"""``registry user add|remove|list``: the htpasswd file of ``auth.htpasswd.path`` or ``auth.token.server.htpasswd``
(or ``--file``), with bcrypt entries, replaced atomically with mode 0600. A running registry sees changes at once."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from registry.auth.htpasswd import DEFAULT_COST, HtpasswdError, check_username, hash_password, read, write
from registry.auth.settings import HtpasswdSettings, TokenSettings, auth_settings
from registry.config import Config, ConfigError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="add, remove or list the users of the htpasswd file")
    actions = user.add_subparsers(dest="action", required=True)
    for name, text in (("add", "add a user or change a password"), ("remove", "remove a user"), ("list", "list users")):
        action = actions.add_parser(name, help=text)
        if name != "list":
            action.add_argument("name")
        if name == "add":
            action.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
            action.add_argument("--cost", type=int, default=DEFAULT_COST, help="bcrypt cost (10 to 16)")
        action.add_argument("config", nargs="?", help="config.yml naming the htpasswd file")
        action.add_argument("--file", help="the htpasswd file (instead of the one config.yml names)")


def htpasswd_path(config: Config) -> str:
    settings = auth_settings(config)
    if isinstance(settings, HtpasswdSettings):
        return settings.path
    if isinstance(settings, TokenSettings) and settings.server is not None and settings.server.htpasswd:
        return settings.server.htpasswd
    raise ConfigError("auth", "names no htpasswd file (auth.htpasswd.path or auth.token.server.htpasswd): use --file")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise HtpasswdError("the passwords do not match")
    return first


def run(args: argparse.Namespace, path: str) -> None:
    users = read(path) if Path(path).exists() else {}
    if args.action == "list":
        for name in sorted(users):
            print(name)
        return
    name = check_username(args.name)
    if args.action == "remove":
        if users.pop(name, None) is None:
            raise HtpasswdError(f"no user {name!r} in {path}")
        write(path, users)
        return
    if not 10 <= args.cost <= 16:
        raise HtpasswdError(f"--cost must be 10 to 16, got {args.cost}")
    users[name] = hash_password(_password(args.password_stdin), args.cost)
    write(path, users)
