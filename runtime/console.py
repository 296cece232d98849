"""A container's pseudo-terminal (``docker run -t``): runc's console socket, the master it hands over, and the copies.

With ``process.terminal`` set, ``runc run --detach`` needs ``--console-socket``: it connects there and sends the
terminal's master side as SCM_RIGHTS. The monitor listens before starting runc, takes the master, copies what the
container writes to the log (one ``stdout`` stream, as docker's json-file has for a tty) and its own stdin to it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from .logs import LogWriter

SOCKET_NAME = "console.sock"
RECEIVE_TIMEOUT = 30.0
CHUNK = 65536


class ConsoleSocket:
    """Listens at DIR/console.sock, bound relative to DIR: a store's path may not fit in a socket address."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / SOCKET_NAME
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(directory)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SOCKET_NAME)
            self.sock.bind(SOCKET_NAME)
        finally:
            os.fchdir(cwd)
            os.close(cwd)
        self.sock.listen(1)

    def args(self) -> list[str]:
        """For runc, run with its cwd the container's directory (runc enters its bundle, the same directory)."""
        return ["--console-socket", SOCKET_NAME]

    def receive(self) -> int:
        """The terminal's master fd runc sent (it has connected by the time `runc run --detach` returns)."""
        self.sock.settimeout(RECEIVE_TIMEOUT)
        conn, _ = self.sock.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        if not fds:
            raise OSError("runc sent no terminal over the console socket")
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def copy_output(master: int, log: LogWriter) -> None:
    """What the container writes to its terminal, to the log, as it comes (EIO once every slave fd is closed)."""
    while True:
        try:
            data = os.read(master, CHUNK)
        except OSError:
            return
        if not data:
            return
        log.write("stdout", data)


def feed_input(source: int, master: int) -> None:
    """Our stdin (the daemon's pipe, or /dev/null) to the terminal, until it ends."""
    with contextlib.suppress(OSError):
        while data := os.read(source, CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(master, view) :]
