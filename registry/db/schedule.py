"""Periodic jobs that run once per interval across every worker of every replica (upload purging, retention).

Each worker wakes on its own clock (at most every POLL seconds) and asks ``claim_run``: the one whose update moves
the job's ``due_at`` from the past to ``now + interval`` runs it; the others find it no longer due and go back to
sleep. A single statement on one
row decides (SQLite's write lock, PostgreSQL's row lock), so no lock is held while the job runs, and a worker that
dies mid-run only delays the job until the next interval, as a crashed single process would. The schedule lives in
the database, so restarts neither skip a run nor add one: the first run is one interval after the first start (a
registry that just started deletes nothing by itself), the next ones every interval after that.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, update

from registry.clock import stopped_within
from registry.db.dialect import insert_ignore
from registry.db.engine import Database
from registry.db.models import scheduled_jobs, utcnow
from registry.db.sessions import Writer

log = logging.getLogger("registry.schedule")
POLL = 300.0  # seconds between a worker's questions, at most (each is an update that usually changes nothing)
_jobs = scheduled_jobs.c
_ADVANCE = (
    update(scheduled_jobs)
    # due, or due more than an interval further ahead than the interval allows (it was shortened since): the slack
    # keeps a worker whose clock read a little earlier than the last claimer's from taking that for a shortening
    .where(_jobs.name == bindparam("job"), or_(_jobs.due_at <= bindparam("now"), _jobs.due_at > bindparam("later")))
    .values(due_at=bindparam("next"))
)


async def claim_run(db: Database, name: str, interval: float, now: datetime | None = None) -> bool:
    """Whether this caller runs job ``name`` now: True for one caller per ``interval``, whoever asks."""
    now = now or utcnow()
    params = {"job": name, "now": now, "next": now + timedelta(seconds=interval)}
    params["later"] = now + timedelta(seconds=2 * interval)

    async def claim(session: Writer) -> bool:
        if (await session.execute(_ADVANCE, params)).rowcount:
            return True
        await insert_ignore(session, scheduled_jobs, [{"name": name, "due_at": params["next"]}])  # starts: due later
        return False

    return await db.write(claim, durable=False)  # lost in a power cut: the job runs once more, which is harmless


async def every(
    stop: asyncio.Event, db: Database, name: str, interval: float, job: Callable[[], Awaitable[object]]
) -> None:
    """Run ``job`` once per ``interval`` across all workers until ``stop`` is set. Each worker asks as it starts (a
    job due runs without waiting for a poll), then after a random part of each poll period (workers and replicas
    spread out); a job that fails is logged and runs again at the next interval. Stopped, never cancelled: a run in
    progress finishes."""
    wait = 0.0
    while not await stopped_within(stop, wait):
        wait = random.uniform(0.5, 1.0) * min(interval, POLL)
        try:
            if await claim_run(db, name, interval):
                await job()
        except Exception:
            log.exception("%s failed; trying again at the next interval", name)
