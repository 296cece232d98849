"""The collector's last run (``gc_last_run``, one row): written at the end of each run, by whichever worker, replica
or ``registry gc`` made it, and read by the UI's garbage collection page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select, update

from registry.db.dialect import insert_ignore
from registry.db.models import aware, gc_last_run
from registry.db.sessions import Reader, Writer

ROW_ID = 1


@dataclass(frozen=True)
class LastRun:
    finished_at: datetime
    seconds: float
    runner: str  # the host and process that ran it
    manifests: int
    blobs: int
    bytes_freed: int
    links_removed: int
    reviews: int


async def record(session: Writer, run: LastRun) -> None:
    values = asdict(run)
    await insert_ignore(session, gc_last_run, [{"id": ROW_ID, **values}])  # the first run anywhere
    await session.execute(update(gc_last_run).where(gc_last_run.c.id == ROW_ID).values(**values))


async def latest(session: Reader) -> LastRun | None:
    c = gc_last_run.c
    columns = (c.finished_at, c.seconds, c.runner, c.manifests, c.blobs, c.bytes_freed, c.links_removed, c.reviews)
    row = (await session.execute(select(*columns).where(c.id == ROW_ID))).first()
    if row is None:
        return None
    finished_at, *rest = row
    return LastRun(aware(finished_at), *rest)
