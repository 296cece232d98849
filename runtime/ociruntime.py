"""The OCI runtime binary (runc or crun) and the Linux calls around it: overlay mounts, pidfds."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import select
import shutil
import subprocess
from pathlib import Path

from .errors import NoOciRuntime, NotRoot

PREFERENCE = ("runc", "crun")  # runc first: crun 1.8 refuses hybrid cgroup hosts
MNT_DETACH = 2
PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def find(chosen: str = "") -> str:
    """The configured runtime (name or path), else the first of runc, crun on PATH."""
    for name in [chosen] if chosen else PREFERENCE:
        path = shutil.which(name)
        if path:
            return path
    if chosen:
        raise NoOciRuntime(f"the configured OCI runtime {chosen!r} is not installed (apt-get install {chosen})")
    raise NoOciRuntime("no OCI runtime found: apt-get install runc (or crun)")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NotRoot(
            f"{what} needs root: rootless mode (user namespaces, fuse-overlayfs, slirp networking, delegated cgroups) "
            "is not implemented; pull, images, import, tag and push work as a normal user"
        )


def mount_overlay(target: Path, layers_dir: Path, lower: list[str], upper: Path, work: Path) -> None:
    """Mount overlayfs at `target`; `lower` are names under `layers_dir`, topmost first.

    The lower directories are given relative to `layers_dir` (mount(2) resolves them against our cwd), so that
    about 60 layers fit in the one-page option string instead of about 30 absolute paths.
    """
    options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(options) >= 4096:
        raise OSError(errno.E2BIG, f"too many layers for one overlay mount ({len(lower)})")
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(layers_dir)
        if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode()) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def unmount(target: Path) -> None:
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # not mounted, or gone
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mounted(target: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.ismount(target)
    return False


def become_subreaper() -> None:
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_exit(pid: int, timeout: float | None) -> bool:
    """Wait for any process (not only a child) to exit, with a pidfd; True when it has."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


class OciRuntime:
    def __init__(self, binary: str, state_root: Path) -> None:
        self.binary = binary
        self.argv = [binary, "--root", str(state_root)]

    def command(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def kill(self, container_id: str, signal: str) -> bool:
        proc = subprocess.run(self.command("kill", container_id, signal), capture_output=True, check=False)
        return proc.returncode == 0

    def delete(self, container_id: str) -> None:
        subprocess.run(self.command("delete", "--force", container_id), capture_output=True, check=False)
