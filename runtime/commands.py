"""One function per `runtime` subcommand: parsed arguments in, exit status out."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from . import containers, images, logs, progress, pull, push, reference
from .client import RegistryClient
from .config import Settings
from .containers import Container
from .errors import ImageNotFound, RuntimeFailure
from .ociruntime import OciRuntime, find, require_root
from .run import launch_detached, run_attached
from .spec import RunOptions
from .store import Store


def oci_runtime(store: Store, settings: Settings) -> OciRuntime:
    return OciRuntime(find(settings.oci_runtime), store.runc_root)


def image_record_or_pull(store: Store, settings: Settings, ref: reference.Reference, quiet: bool) -> None:
    try:
        store.image(str(ref))
    except ImageNotFound:
        if not quiet:
            print(f"Unable to find image '{ref}' locally", file=sys.stderr)
        pull.pull(store, settings, ref, quiet=quiet)


# ---- images ------------------------------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    ref = reference.parse(args.image)
    record = pull.pull(store, settings, ref, quiet=args.quiet)
    if args.quiet:
        print(ref)
    else:
        print(f"Digest: {record.manifest}\nPulled {ref}")
    return 0


def cmd_images(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for name, rec in store.images().items():
        ref = reference.parse(name)
        rows.append((ref.name, ref.tag or "<none>", rec.config.split(":")[1][:12], rec.created[:19], human(rec.size)))
    if args.quiet:
        for row in rows[1:]:
            print(row[2])
    else:
        table(rows)
    return 0


def cmd_rmi(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    for name in args.images:
        print(f"Untagged: {reference.parse(name)}")
        for removed in images.remove_image(store, str(reference.parse(name)), force=args.force):
            print(f"Deleted: {removed}")
    return 0


def cmd_tag(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    images.tag(store, str(reference.parse(args.source)), reference.parse(args.target))
    return 0


def cmd_import(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    ref = reference.parse(args.name)
    record = images.import_image(
        store, Path(args.source), ref, cmd=args.cmd or [], env=args.env or [], limits=settings.unpack
    )
    print(record.manifest)
    return 0


def cmd_push(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    push.push(store, settings, reference.parse(args.image), progress.PushLines(print))
    return 0


def cmd_login(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    user = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if password is None:
        password = getpass.getpass("Password: ")
    with RegistryClient(
        reference.parse(f"{args.registry}/x").endpoint,
        credentials=(user, password),
        insecure=args.registry in settings.insecure_registries,
    ) as client:
        client.ping()
    settings.set_credentials(args.registry, user, password)
    settings.save()
    print(f"Login credentials for {args.registry} saved in {settings.path}")
    return 0


def cmd_logout(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    if settings.forget(args.registry):
        settings.save()
    print(f"Removed login credentials for {args.registry}")
    return 0


# ---- containers --------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    require_root("runtime run")
    runtime = oci_runtime(store, settings)
    ref = reference.parse(args.image)
    image_record_or_pull(store, settings, ref, quiet=args.quiet)
    opts = RunOptions(
        command=args.command,
        entrypoint=args.entrypoint,
        env=args.env or [],
        volumes=args.volume or [],
        workdir=args.workdir,
        user=args.user,
        name=args.name,
        network=args.network,
        memory=args.memory,
        pids_limit=args.pids_limit,
        rm=args.rm,
        detach=args.detach,
    )
    container = containers.create(store, str(ref), store.image(str(ref)), opts, dict(os.environ))
    if args.detach:
        launch_detached(store, container, runtime)
        print(container.id)
        return 0
    sys.stdout.flush()
    return run_attached(store, container, runtime)


def cmd_ps(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")]
    for c in containers.all_containers(store):
        status = c.status
        if status != "running" and not args.all:
            continue
        rows.append((c.id[:12], c.image, shorten(" ".join(c.args), 30), c.created[:19], describe(c), c.name))
    if args.quiet:
        for row in rows[1:]:
            print(row[0])
    else:
        table(rows)
    return 0


def describe(c: Container) -> str:
    status = c.status
    if status == "exited":
        code = c.state.get("exit_code")
        return f"Exited ({code if code is not None else 'unknown'})"
    return "Up" if status == "running" else status.capitalize()


def cmd_logs(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    c = containers.find(store, args.container)
    out = {"stdout": sys.stdout, "stderr": sys.stderr}
    for record in logs.read(c.dir / "log.json", tail=args.tail, follow=args.follow, running=lambda: reload(store, c)):
        stream = out.get(record.get("stream", "stdout"), sys.stdout)
        stream.write(record.get("log", ""))
        stream.flush()
    return 0


def reload(store: Store, c: Container) -> bool:
    try:
        return containers.load(store, c.id).running()
    except OSError:
        return False


Act = Callable[[Container, OciRuntime], None]


def _each_container(command: str, args: argparse.Namespace, store: Store, settings: Settings, act: Act) -> int:
    """``runtime stop|kill|rm``: act on each named container in turn, printing its name once done."""
    require_root(f"runtime {command}")
    runtime = oci_runtime(store, settings)
    for key in args.containers:
        act(containers.find(store, key), runtime)
        print(key)
    return 0


def cmd_stop(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    return _each_container("stop", args, store, settings, lambda c, runtime: containers.stop(c, runtime, args.time))


def cmd_kill(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    return _each_container("kill", args, store, settings, lambda c, runtime: containers.kill(c, runtime, args.signal))


def cmd_rm(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    def remove(container: Container, runtime: OciRuntime) -> None:
        containers.remove(store, container, runtime, force=args.force)

    return _each_container("rm", args, store, settings, remove)


def cmd_inspect(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    found = []
    for key in args.targets:
        try:
            c = containers.find(store, key)
            found.append({"Id": c.id, "Name": c.name, "Image": c.image, "State": {**c.state, "Status": c.status},
                          "Args": c.args, "Options": c.options, "Layers": [str(store.layer_dir(d)) for d in c.diff_ids],
                          "Created": c.created, "Dir": str(c.dir)})  # fmt: skip
            continue
        except (RuntimeFailure, OSError):
            pass
        name = str(reference.parse(key))
        record = store.image(name)
        found.append({"Name": name, **asdict(record), "Config": store.config_doc(record),
                      "LayerDirs": [str(store.layer_dir(d)) for d in record.diff_ids]})  # fmt: skip
    print(json.dumps(found, indent=2))
    return 0


# ---- output helpers ----------------------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"
