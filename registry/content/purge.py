"""Upload purging on a schedule, with distribution's ``storage.maintenance.uploadpurging`` settings."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.content.uploads import UploadStore
from registry.db import queries

log = logging.getLogger("registry.purge")


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


async def purge_forever(uploads: UploadStore, settings: dict[str, Any]) -> None:
    """Every worker may run this: purging is idempotent, and a session is removed by whichever gets there first."""
    while True:
        try:
            await purge_once(uploads, float(settings["age"]), bool(settings.get("dryrun", False)))
        except Exception:
            log.exception("upload purging failed; trying again at the next interval")
        await asyncio.sleep(float(settings["interval"]))
