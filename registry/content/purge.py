"""Upload purging on a schedule, with distribution's ``storage.maintenance.uploadpurging`` settings."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from registry.content.uploads import UploadStore
from registry.db import queries
from registry.db.schedule import every

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


async def purge_until(stop: asyncio.Event, uploads: UploadStore, settings: dict[str, Any]) -> None:
    """Purge every interval until ``stop`` is set: once per interval across all workers and replicas
    (``registry.db.schedule``), the first time when the first of them starts."""
    age, dryrun = float(settings["age"]), bool(settings.get("dryrun", False))
    await every(
        stop, uploads.db, "upload-purging", float(settings["interval"]), lambda: purge_once(uploads, age, dryrun)
    )
