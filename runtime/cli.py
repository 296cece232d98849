"""The `runtime` command line: argparse, the store and settings, and errors printed as one actionable line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from . import commands
from .config import Settings
from .config import parse_size as parse_bytes
from .errors import RuntimeFailure
from .store import Store, default_root

Handler = Callable[[argparse.Namespace, Store, Settings], int]


def parse_size(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: e.g. 64m, 1g") from None


def parse_command(text: str) -> list[str]:
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise argparse.ArgumentTypeError(f"--cmd {text!r}: expected a JSON array of strings")
        return value
    return shlex.split(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runtime", description="Pull, run and push OCI images with runc or crun.")
    parser.add_argument("--root", type=Path, help="the store (default /var/lib/runtime as root, else ~/.local/share)")
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = add("pull", commands.cmd_pull, "download an image and unpack its layers")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")

    p = add("run", commands.cmd_run, "run a command in a new container")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the id")
    p.add_argument("-e", "--env", action="append", metavar="K=V")
    p.add_argument("-v", "--volume", action="append", metavar="HOST:CTR[:ro]")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--name")
    p.add_argument("--network", choices=("none", "host"), default="none")
    p.add_argument("--entrypoint")
    p.add_argument("-m", "--memory", type=parse_size)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("-q", "--quiet", action="store_true", help="no pull progress")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)

    p = add("ps", commands.cmd_ps, "list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")

    p = add("logs", commands.cmd_logs, "print a detached container's output")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int)
    p.add_argument("container")

    p = add("stop", commands.cmd_stop, "SIGTERM, then SIGKILL after a grace period")
    p.add_argument("-t", "--time", type=float, default=10.0)
    p.add_argument("containers", nargs="+")

    p = add("kill", commands.cmd_kill, "send a signal (default KILL)")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")

    p = add("rm", commands.cmd_rm, "remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+")

    p = add("images", commands.cmd_images, "list images")
    p.add_argument("-q", "--quiet", action="store_true")

    p = add("rmi", commands.cmd_rmi, "remove images (refused while a container uses one, unless -f)")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")

    p = add("inspect", commands.cmd_inspect, "containers or images as JSON")
    p.add_argument("targets", nargs="+")

    p = add("import", commands.cmd_import, "make a one-layer image from a directory or a tarball")
    p.add_argument("--cmd", type=parse_command, help="the default command: a JSON array, or shell words")
    p.add_argument("--env", action="append", metavar="K=V")
    p.add_argument("source")
    p.add_argument("name")

    p = add("tag", commands.cmd_tag, "another name for an image")
    p.add_argument("source")
    p.add_argument("target")

    p = add("push", commands.cmd_push, "upload an image to its registry")
    p.add_argument("image")

    p = add("login", commands.cmd_login, "store credentials for a registry (mode 0600)")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("registry")

    p = add("logout", commands.cmd_logout, "forget a registry's credentials")
    p.add_argument("registry")

    p = add("daemon", cmd_daemon, "serve the Engine API (the docker CLI) on a unix socket")
    p.add_argument("--socket", type=Path, default=Path("/run/runtime.sock"), help="default /run/runtime.sock")
    p.add_argument("--root", type=Path, default=argparse.SUPPRESS, help="the store (as runtime --root)")
    p.add_argument("--group", help="the socket's group (default root's); its members get root on this host")
    return parser


def cmd_daemon(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from .daemon.main import run  # the server's modules load only for this command

    return run(args.socket, store, settings, args.group)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
        store = Store(args.root or default_root())
        handler: Handler = args.handler
        return handler(args, store, settings)
    except RuntimeFailure as exc:
        print(f"runtime: {exc}", file=sys.stderr)
        return exc.exit_status
    except httpx.HTTPError as exc:
        url = getattr(getattr(exc, "request", None), "url", "")
        print(f"runtime: cannot reach the registry ({url}): {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # `runtime logs x | head`
        return 0
    except OSError as exc:
        hint = " (the store needs write access: run as root, or --root a directory of yours)"
        print(
            f"runtime: {subject(args)}{describe(exc)}{hint if isinstance(exc, PermissionError) else ''}",
            file=sys.stderr,
        )
        return 1
    except RecursionError:
        print(f"runtime: {subject(args)}too deeply nested to handle", file=sys.stderr)
        return 1


TARGETS = ("image", "container", "images", "containers", "targets", "source")


def subject(args: argparse.Namespace) -> str:
    """``rmi app:v1: `` — the command and what it was given, to lead an error line."""
    for key in TARGETS:
        value = getattr(args, key, None)
        if value:
            return f"{args.command_name} {' '.join(value) if isinstance(value, list) else value}: "
    return f"{args.command_name}: "


def describe(exc: OSError) -> str:
    """``No such file or directory: '/path'`` (both paths of a rename or link)."""
    text = exc.strerror or str(exc)
    names = [repr(os.fsdecode(n)) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{text}: {' -> '.join(names)}" if names else text
