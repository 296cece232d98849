"""Per-layer progress on a terminal (rich); nothing at all when quiet or not a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn


class LayerProgress:
    """One line per layer: short digest, bar, bytes, speed, status. Thread-safe (rich's Progress is)."""

    def __init__(self, quiet: bool = False) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.lock = threading.Lock()
        self.progress: Progress | None = None
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("{task.fields[status]}"),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> LayerProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def layer(self, digest: str, size: int) -> tuple[Callable[[int], None], Callable[[str], None]]:
        """(advance by n bytes, set status text) for one layer."""
        if self.progress is None:
            return (lambda _n: None), (lambda _s: None)
        progress = self.progress
        task: TaskID = progress.add_task(digest.split(":")[-1][:12], total=size, status="waiting")

        def advance(n: int) -> None:
            progress.advance(task, n)

        def status(text: str) -> None:
            progress.update(task, status=text)
            if text in ("done", "already exists"):
                progress.update(task, completed=size)

        return advance, status
