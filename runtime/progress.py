"""What pull and push report, as events: the one place the progress of a transfer comes from.

`pull` and `push` call a `Report` with `Event`s, in docker's words (`Pulling fs layer`, `Downloading 1/9`, `Pushed`,
...). Two consumers turn them into output: `Bars` draws the CLI's per-layer bars on a terminal, and `json_line`
writes the Engine API's JSON-lines progress for the daemon (`{"status", "progressDetail", "id"}`, `errorDetail` on
failure, `aux` for push's result). A report may be called from several threads at once.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

About = Literal["layer", "image", "config"]
STEPS = 100  # a transfer reports its bytes at most this many times, plus its end


@dataclass(frozen=True)
class Event:
    """One line of progress: about a layer (`id` its short digest) or the whole image (`id` the tag, or none)."""

    status: str
    id: str = ""
    current: int | None = None
    total: int | None = None
    aux: dict[str, Any] | None = None
    about: About = "layer"  # "image": a line with an id but no progress (`Pulling from app`, id the tag);
    # "config": the config blob, which runtime push shows and docker does not


Report = Callable[[Event], None]


def silent(_: Event) -> None:
    pass


def short(digest: str) -> str:
    return digest.split(":")[-1][:12]


class Transfer:
    """A byte counter for one layer's transfer that reports `status` current/total, at most STEPS times."""

    def __init__(self, report: Report, status: str, layer: str, total: int) -> None:
        self.report, self.status, self.layer, self.total = report, status, layer, total
        self.current = 0
        self.reported = 0

    def advance(self, n: int) -> None:
        self.current += n
        if self.current < self.reported or self.current - self.reported >= max(self.total // STEPS, 1):
            self.reported = self.current
            self.report(Event(self.status, self.layer, self.current, self.total))


# ---- the daemon's consumer: the Engine API's JSON lines ------------------------------------------------------------


def message(event: Event) -> dict[str, Any]:
    """`{"status", "progressDetail", "id"}` as dockerd writes it (progressDetail only on per-layer lines)."""
    doc: dict[str, Any] = {"status": event.status} if event.status else {}
    if event.id and event.status and event.about != "image":
        doc["progressDetail"] = {"current": event.current, "total": event.total} if event.current is not None else {}
    if event.id:
        doc["id"] = event.id
    if event.aux is not None:
        doc["progressDetail"] = {}
        doc["aux"] = event.aux
    return doc


def json_line(event: Event) -> bytes:
    """One JSON line; nothing for a line docker does not show (the config blob's)."""
    if event.about == "config":
        return b""
    return json.dumps(message(event), separators=(",", ":")).encode() + b"\n"


def error_line(text: str) -> bytes:
    return json.dumps({"errorDetail": {"message": text}, "error": text}, separators=(",", ":")).encode() + b"\n"


# ---- the CLI's consumers ------------------------------------------------------------------------------------------

DONE = ("Pull complete", "Already exists")
PUSHED = ("Pushed", "Layer already exists")


class Bars:
    """One bar per layer on a terminal (short digest, bytes, speed, status); nothing when quiet or not a terminal."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.enabled = console is not None or (not quiet and sys.stderr.isatty())
        self.lock = threading.Lock()
        self.tasks: dict[str, TaskID] = {}
        self.totals: dict[str, int] = {}
        self.progress: Progress | None = None
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("{task.fields[status]}"),
                console=console or Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if self.progress is None or not event.id or event.about != "layer":
            return
        with self.lock:
            task = self.tasks.get(event.id)
            if task is None:
                task = self.tasks[event.id] = self.progress.add_task(event.id, total=None, status=event.status)
        if event.total is not None:
            self.totals[event.id] = event.total
        total = self.totals.get(event.id)
        completed = (total or 1) if event.status in DONE else event.current
        self.progress.update(task, status=event.status, total=total or (1 if completed else None), completed=completed)


class PushLines:
    """`runtime push`'s output: what became of each blob (`abc123: Pushed`), then the digest line."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def __call__(self, event: Event) -> None:
        if event.id and (event.status in PUSHED or event.status.startswith("Mounted from ")):
            self.say(f"{event.id}: {event.status}")
        elif not event.id and event.aux is None and ": digest: " in event.status:
            self.say(event.status)
