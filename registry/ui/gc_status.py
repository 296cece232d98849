"""The collector's last run in this process, for the UI's status page (the app keeps one in ``app.state.last_gc``
and adds its ``record`` to the collector's observers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.db.models import utcnow
from registry.gc.collector import Report


@dataclass(frozen=True)
class Run:
    finished: datetime
    seconds: float
    report: Report


class LastRun:
    def __init__(self) -> None:
        self.latest: Run | None = None

    def record(self, report: Report, seconds: float) -> None:
        self.latest = Run(utcnow(), seconds, report)
