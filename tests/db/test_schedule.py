"""Periodic jobs run once per interval across workers (``registry.db.schedule``), on SQLite and PostgreSQL: every
worker asks, one of them runs the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from registry.db import migrate, schedule
from registry.db.engine import Database
from registry.db.models import utcnow

HOUR = 3600.0


@asynccontextmanager
async def workers(url: str, count: int) -> AsyncIterator[list[Database]]:
    """``count`` workers' own connections to one migrated database, as separate processes would hold them."""
    databases = [Database(url) for _ in range(count)]
    await migrate.upgrade(databases[0])
    try:
        yield databases
    finally:
        for database in databases:
            await database.dispose()


async def test_one_worker_of_many_runs_each_interval(database_url: str) -> None:
    async with workers(database_url, 4) as dbs:
        start = utcnow()

        async def ask(at: float) -> int:
            now = start + timedelta(seconds=at)
            answers = await asyncio.gather(*(schedule.claim_run(db, "job", HOUR, now) for db in dbs))
            return sum(answers)

        assert await ask(-HOUR) == 0  # the first ever question starts the schedule: due an interval later
        assert await ask(0) == 1
        assert await ask(60) == 0
        assert await ask(HOUR - 1) == 0
        assert await ask(HOUR) == 1
        assert await ask(HOUR + 1) == 0
        assert await ask(5 * HOUR) == 1  # a long outage: one run, not one per missed interval
        assert await ask(5 * HOUR + 60) == 0


async def test_jobs_are_scheduled_apart_and_a_shortened_interval_applies_at_once(database_url: str) -> None:
    async with workers(database_url, 1) as (db,):
        now = utcnow()
        for job in ("purge", "retention"):  # each job its own schedule
            assert not await schedule.claim_run(db, job, 24 * HOUR, now - timedelta(hours=24))
            assert await schedule.claim_run(db, job, 24 * HOUR, now)
        assert not await schedule.claim_run(db, "purge", 24 * HOUR, now + timedelta(hours=1))
        # configured down to an hour since: the old due time (a day away) is far beyond what an hour allows
        assert await schedule.claim_run(db, "purge", HOUR, now + timedelta(hours=1))
        assert not await schedule.claim_run(db, "purge", HOUR, now + timedelta(hours=1, minutes=30))
        # a worker whose clock read a moment earlier than the last claimer's: not a shortening, not due
        assert not await schedule.claim_run(db, "purge", HOUR, now + timedelta(minutes=59))


async def test_workers_looping_run_the_job_once_per_interval(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = 0.3
    monkeypatch.setattr(schedule.random, "uniform", lambda low, high: 0.1)  # each worker asks every 0.1 * 0.3 s
    runs: list[float] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def job() -> None:
        runs.append(loop.time())
        if len(runs) == 4:
            stop.set()

    async with workers(database_url, 3) as dbs:
        await asyncio.wait_for(asyncio.gather(*(schedule.every(stop, db, "job", interval, job) for db in dbs)), 30)
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
    assert len(runs) == 4
    # three workers asking ten times an interval: one run per interval (give or take how late a job starts after
    # its claim, which the lock waits of the others delay)
    assert min(gaps) >= interval / 2, gaps


async def test_a_failing_job_is_logged_and_runs_again(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    attempts = 0

    async def job() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            stop.set()
        raise RuntimeError("storage away")

    async with workers(database_url, 1) as (db,):
        await asyncio.wait_for(schedule.every(stop, db, "job", 0.05, job), 30)
    assert attempts == 2
    assert "job failed; trying again at the next interval" in caplog.text
