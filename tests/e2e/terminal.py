"""A pseudo-terminal for driving an interactive command (``docker run -it``) from a test, without sleeps."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
from types import TracebackType

READ_TIMEOUT = 60.0


class Terminal:
    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close_slave()
        os.close(self.master)

    def close_slave(self) -> None:
        """Once the command has it: the master then reads EIO when the command is gone."""
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_chunk(self) -> bytes:
        ready, _, _ = select.select([self.master], [], [], READ_TIMEOUT)  # guards a hang; nothing is timed
        if not ready:
            raise AssertionError(f"nothing on the terminal for {READ_TIMEOUT:.0f}s")
        try:
            return os.read(self.master, 4096)
        except OSError:  # EIO: every slave fd is closed
            return b""

    def read_until(self, marker: bytes) -> bytes:
        seen = b""
        while marker not in seen:
            chunk = self.read_chunk()
            if not chunk:
                raise AssertionError(f"the terminal closed before {marker!r}; it showed {seen!r}")
            seen += chunk
        return seen

    def read_to_end(self) -> bytes:
        seen = b""
        while chunk := self.read_chunk():
            seen += chunk
        return seen
