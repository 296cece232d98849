"""Container logs in docker's json-file format: one `{"log": "...\\n", "stream": "stdout", "time": "..."}` a line."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

FOLLOW_POLL = 0.1


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class LogWriter:
    """Appends lines from several streams to one file, a whole line at a time."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("ab")
        self.lock = threading.Lock()

    def copy(self, stream: str, source: BinaryIO) -> None:
        """Copy `source` line by line until EOF (run one thread per stream)."""
        for line in iter(source.readline, b""):
            self.write(stream, line)

    def write(self, stream: str, line: bytes) -> None:
        record = {"log": line.decode(errors="replace"), "stream": stream, "time": rfc3339_nano()}
        data = (json.dumps(record) + "\n").encode()
        with self.lock:
            self.file.write(data)
            self.file.flush()

    def close(self) -> None:
        self.file.close()


def read(
    path: Path, *, tail: int | None = None, follow: bool = False, running: Callable[[], bool]
) -> Iterator[dict[str, str]]:
    """Records of the log, the last `tail` of them; with `follow`, then new ones until the container stops."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        lines = f.readlines()
        partial = b""
        if lines and not lines[-1].endswith(b"\n"):
            partial = lines.pop()
        chosen = deque(lines, maxlen=tail) if tail is not None else lines
        for line in chosen:
            yield json.loads(line)
        while follow:
            line = f.readline()
            if line:
                partial += line
                if partial.endswith(b"\n"):
                    yield json.loads(partial)
                    partial = b""
                continue
            if not running():
                rest = f.read()
                for extra in (partial + rest).splitlines():
                    if extra.strip():
                        yield json.loads(extra)
                return
            time.sleep(FOLLOW_POLL)
