"""The collector's last run (``gc_last_run``, one row): written at the end of each run, by whichever worker, replica
or ``registry gc`` made it, and read by the UI's garbage collection page."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from registry.db.dialect import for_dialect
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


def _replacing(insert: Any) -> Any:
    """The row, or, when it is there already (every run after the first anywhere), its values replaced."""
    values = {column.name: insert.excluded[column.name] for column in gc_last_run.c if column.name != "id"}
    return insert.on_conflict_do_update(index_elements=["id"], set_=values)


async def record(session: Writer, run: LastRun) -> None:
    statement = for_dialect(session, "gc_last_run", gc_last_run, _replacing)
    await session.execute(statement, {"id": ROW_ID, **asdict(run)})


async def latest(session: Reader) -> LastRun | None:
    c = gc_last_run.c
    columns = (c.finished_at, c.seconds, c.runner, c.manifests, c.blobs, c.bytes_freed, c.links_removed, c.reviews)
    row = (await session.execute(select(*columns).where(c.id == ROW_ID))).first()
    if row is None:
        return None
    finished_at, *rest = row
    return LastRun(aware(finished_at), *rest)
