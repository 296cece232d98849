"""The collector's last run (``registry.db.gc_last_run``), on SQLite and PostgreSQL: one row, the latest run of any
worker, read back as written."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from registry.db import gc_last_run
from registry.db.gc_last_run import LastRun
from registry.db.models import utcnow
from tests.db.test_schedule import workers


async def test_each_run_replaces_the_one_before_whichever_worker_made_it(database_url: str) -> None:
    async with workers(database_url, 2) as (first, second):
        async with first.read() as session:
            assert await gc_last_run.latest(session) is None
        now = utcnow().replace(microsecond=0)
        runs = [
            LastRun(now, 0.25, "host-a pid 1", 1, 2, 3_000_000_000, 4, 5),  # more bytes than 32 bits hold
            LastRun(now + timedelta(seconds=30), 0.5, "host-b pid 2", 0, 0, 0, 0, 7),
        ]
        for db, run in zip((first, second), runs, strict=True):
            await db.write(partial(gc_last_run.record, run=run))
            async with first.read() as session:
                assert await gc_last_run.latest(session) == run
