"""Upload purging on a schedule, with distribution's ``storage.maintenance.uploadpurging`` settings."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.content.uploads import UploadStore
from registry.db import queries

log = logging.getLogger("registry.purge")
# distribution waits a random number of minutes (under an hour) before the first purge, so replicas spread out
FIRST_RUN_JITTER = 3600.0


async def purge_once(uploads: UploadStore, age_seconds: float, dryrun: bool) -> list[str]:
    cutoff = datetime.now(UTC) - timedelta(seconds=age_seconds)
    if dryrun:
        async with uploads.db.read() as session:
            stale = await queries.stale_uploads(session, cutoff)
        log.info("upload purging (dry run): would remove %d session(s)", len(stale))
        return stale
    stale = await uploads.purge(cutoff)
    if stale:
        log.info("upload purging: removed %d session(s) idle for over %.0fs", len(stale), age_seconds)
    return stale


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def purge_until(stop: asyncio.Event, uploads: UploadStore, settings: dict[str, Any]) -> None:
    """Purge every interval until ``stop`` is set. Every worker may run this: purging is idempotent.

    It is stopped, never cancelled, so a purge in progress finishes its database work before the engine closes.
    """
    if await stopped_within(stop, random.uniform(0, FIRST_RUN_JITTER)):
        return
    while True:
        try:
            await purge_once(uploads, float(settings["age"]), bool(settings.get("dryrun", False)))
        except Exception:
            log.exception("upload purging failed; trying again at the next interval")
        if await stopped_within(stop, float(settings["interval"])):
            return
