"""Processes for the end-to-end tier: finding tools, running commands, and background daemons with a log file.

Everything here talks only to processes this tier starts itself, on private sockets and loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

CI = os.environ.get("CI") == "true"

#: Debian package that ships each external tool, for the skip/fail message.
DEBIAN_PACKAGE = {
    "docker": "docker.io",
    "dockerd": "docker.io",
    "containerd": "containerd",
    "ctr": "containerd",
    "busybox": "busybox-static",
    "docker-registry": "docker-registry",
}

PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
COMMAND_TIMEOUT = 180.0
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


# --------------------------------------------------------------------------------------------------------------------
# Tools and commands
# --------------------------------------------------------------------------------------------------------------------


def missing(reason: str) -> NoReturn:
    """Fail under CI (a missing tool must never hide a test there), skip elsewhere."""
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the run)", pytrace=False)
    pytest.skip(reason)


def require(tool: str) -> str:
    """Return the path of `tool`; skip the test (fail it under CI) when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGE.get(tool, tool)
        missing(f"{tool} is not installed (apt-get install {package}; scripts/test.sh does it as root)")
    return path


def base_env() -> dict[str, str]:
    """This process's environment without proxy settings: every request here goes to a local process."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        missing(f"{what} needs root")


class CommandFailed(AssertionError):
    """A command exited non-zero (or timed out); the message carries everything needed to see why."""

    def __init__(self, args: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> None:
        status = "timed out" if returncode is None else f"exited {returncode}"
        super().__init__(
            f"command {status}: {' '.join(args)}\n"
            f"--- stdout ---\n{stdout.rstrip() or '(empty)'}\n--- stderr ---\n{stderr.rstrip() or '(empty)'}"
        )
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output; raise CommandFailed on failure when `check`.
    `input` is the command's standard input (a password for `--password-stdin`); none by default."""
    argv = [os.fspath(a) for a in args]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else base_env(),
            cwd=cwd,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, None, _text(exc.stdout), _text(exc.stderr)) from None
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def short_tmpdir(prefix: str = "e2e-") -> Path:
    """A private directory with a short path: unix socket paths must stay under ~100 characters."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def random_suffix() -> str:
    return secrets.token_hex(4)


# --------------------------------------------------------------------------------------------------------------------
# Background processes
# --------------------------------------------------------------------------------------------------------------------


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class Daemon:
    """A long-running process with stdout and stderr appended to a log file."""

    def __init__(
        self,
        title: str,
        args: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_title = title
        self.args = [os.fspath(a) for a in args]
        self.log_path = log_path
        self.env = dict(env) if env is not None else base_env()
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, f"{self.log_title} already started"
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so a hung daemon's children can be reaped with it
            )

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def describe_exit(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"{self.log_title} exited with status {code}; last lines of {self.log_path}:\n{tail(self.log_path)}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.log_title} is not running"
        return self.proc.pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the process group this daemon leads.

        Returns the exit status (negative: killed by that signal), or None when the daemon was never started.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        return proc.returncode


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    daemon: Daemon | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Poll `ready()` until it returns True; fail early if `daemon` exits, and with its log on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if daemon is not None and daemon.exited():
            pytest.fail(f"{what}: {daemon.describe_exit()}", pytrace=False)
        if ready():
            return
        if time.monotonic() > deadline:
            detail = f"\nlast lines of {daemon.log_path}:\n{tail(daemon.log_path)}" if daemon is not None else ""
            pytest.fail(f"{what}: not ready after {timeout:.0f}s{detail}", pytrace=False)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/PID/stat, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name in parentheses may contain spaces
    return fields[0], int(fields[1])


def children(pid: int) -> dict[int, list[str]]:
    """The live (non-zombie) children of `pid`, with their command lines, read from /proc."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None or stat[1] != pid or stat[0] == "Z":
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[int(entry.name)] = [arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg]
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    prefix = os.fspath(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # octal escapes such as \040
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(root: Path) -> None:
    """Unmount whatever a daemon left below `root`, then delete it (never across a mount that would not go)."""
    if not root.exists():
        return
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = mounts_under(root)
    if left:
        raise AssertionError(f"refusing to delete {root}: still mounted: {left}")
    subprocess.run(["rm", "-rf", "--one-file-system", os.fspath(root)], check=False)  # deep trees too
