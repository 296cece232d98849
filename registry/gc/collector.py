"""The collector: claims due reviews, decides each in a transaction of its own (re-checking every reference there),
and deletes a blob's bytes only after the transaction that deleted its row has committed.

Any number of workers and replicas run it at once: a claim hands each review to one of them for ``CLAIM`` (a
worker that dies gives it back by then). A dry run makes the same decisions in one transaction it rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from registry.clock import stopped_within
from registry.config import GcConfig
from registry.db import gc_last_run, reviews
from registry.db.engine import Database
from registry.db.gc_last_run import LastRun
from registry.db.models import utcnow
from registry.db.sessions import Writer
from registry.events.sink import EventSink, disabled
from registry.gc.deletion import TOMBSTONE_STALE, finish_deletion
from registry.gc.policies import Policies
from storage_backends import StorageBackend

log = logging.getLogger("registry.gc")
Claim = Callable[..., Coroutine[Any, Any, list[Any]]]
Review = Callable[[Writer, Any, str, "Report"], Awaitable[bool]]
CLAIM = timedelta(minutes=5)
BATCH = 100


@dataclass
class Report:
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    blobs: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    links_removed: int = 0
    reviews: int = 0
    manifest_reviews: int = 0  # of ``reviews``

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs)

    def summary(self) -> str:
        return summary(len(self.manifests), len(self.blobs), self.bytes_freed, self.links_removed, self.reviews)

    def last_run(self, finished_at: datetime, seconds: float, runner: str) -> LastRun:
        """What ``gc_last_run`` keeps of it."""
        manifests, blobs, links, freed = len(self.manifests), len(self.blobs), self.links_removed, self.bytes_freed
        return LastRun(finished_at, seconds, runner, manifests, blobs, freed, links, self.reviews)


def summary(manifests: int, blobs: int, bytes_freed: int, links_removed: int, reviews: int) -> str:
    """A run in words: the log's, ``registry gc``'s and the UI's."""
    return (
        f"{manifests} manifest(s) and {blobs} blob(s) ({bytes_freed} bytes), "
        f"{links_removed} repository link(s), after {reviews} review(s)"
    )


class _DryRun(Exception):
    pass


async def _no_pause(point: str) -> None:
    return None


class Collector:
    def __init__(
        self,
        db: Database,
        backend: StorageBackend,
        gc: GcConfig,
        policies: Policies | None = None,
        *,
        untagged_after: Callable[[str], float | None] | None = None,
        offline: bool = False,
        events: EventSink | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.gc = gc
        self.policies = policies or Policies(default_untagged=gc.untagged)
        self.untagged_after = untagged_after or self.policies.untagged_after
        self.offline = offline  # distribution's garbage-collect: no server runs, so no lease protects a blob
        self.events = events or disabled()  # a delete event per manifest collected, in the deleting transaction
        self.pause: Callable[[str], Awaitable[None]] = _no_pause  # tests stop here to interleave a push
        self.observers: list[Callable[[Report, float], None]] = []  # each run's report and seconds (metrics)

    async def run_once(self, *, dry_run: bool = False, queue_everything: bool = False) -> Report:
        """Every review due now, and those its deletions make due, until none is left; a dry run with
        ``queue_everything`` queues inside its rolled-back transaction too."""
        if dry_run:
            return await self._dry_run(queue_everything)
        report, started = Report(), time.perf_counter()
        await self.finish_stale_deletions()
        while await self._manifest_batch(report) + await self._blob_batch(report):
            pass
        seconds = time.perf_counter() - started
        for observer in self.observers:
            observer(report, seconds)
        await self._record(report.last_run(utcnow(), seconds, f"{socket.gethostname()} pid {os.getpid()}"))
        return report

    async def _record(self, run: LastRun) -> None:
        """The UI shows the last run, whichever worker made it; a failure to record it fails no run."""
        try:
            await self.db.write(partial(gc_last_run.record, run=run), durable=False)
        except Exception:
            log.warning("garbage collection: its run could not be recorded for the UI", exc_info=True)

    def _per_transaction(self) -> int:
        """Reviews decided in one transaction: many on SQLite, whose one writer makes a commit (and its flush) the
        cost; one on PostgreSQL, where holding the locks of several would let a push wait on us in a cycle."""
        return BATCH if self.db.is_sqlite else 1

    async def _manifest_batch(self, report: Report) -> int:
        return await self._batch("manifest", reviews.claim_manifest_reviews, self._review_manifest, report)

    async def _blob_batch(self, report: Report) -> int:
        return await self._batch("blob", reviews.claim_blob_reviews, self._review_blob, report)

    async def _batch(self, kind: str, claim: Claim, review: Review, report: Report) -> int:
        """Claim due reviews of one kind, decide them a transaction at a time, then delete the bytes of the blobs
        whose rows the committed transaction deleted."""
        token, now = str(uuid.uuid4()), utcnow()
        claimed = await self.db.write(
            partial(claim, token=token, now=now, until=now + CLAIM, limit=BATCH), durable=False
        )
        step = self._per_transaction()
        for start in range(0, len(claimed), step):
            await self.pause(f"{kind}:claimed")
            keys = claimed[start : start + step]
            deleted = await self.db.write(partial(self._decide, keys=keys, review=review, token=token, report=report))
            if deleted:
                await self.pause("blob:row-deleted")
                await finish_deletion(self.backend, self.db, deleted)
        return len(claimed)

    @staticmethod
    async def _decide(session: Writer, keys: list[Any], review: Review, token: str, report: Report) -> list[str]:
        """One transaction's reviews; the digests of the blobs whose rows it deleted."""
        return [key for key in keys if await review(session, key, token, report)]

    async def _review_manifest(self, session: Writer, manifest_id: int, token: str, report: Report) -> bool:
        verdict = await reviews.review_manifest(
            session, manifest_id, token, utcnow(), self.untagged_after, self.policies.collect_referrers
        )
        report.reviews += 1
        report.manifest_reviews += 1
        if verdict.deleted:
            report.manifests.append((verdict.repository, verdict.digest))
            await self.events.record(session, self.events.deleted(verdict.repository, digest=verdict.digest))
        return False  # no bytes to delete: a manifest lives in SQL

    async def _review_blob(self, session: Writer, digest: str, token: str, report: Report) -> bool:
        now = utcnow()
        cutoff = now - timedelta(seconds=self.gc.delay)
        verdict = await reviews.review_blob(session, digest, token, now, cutoff, leases=not self.offline)
        report.reviews += 1
        report.links_removed += verdict.links_removed
        if verdict.deleted:
            report.blobs.append((digest, verdict.size))
        return verdict.deleted

    async def _dry_run(self, queue_everything: bool) -> Report:
        """The same decisions in one transaction that is rolled back: nothing changes, bytes included."""
        report = Report()

        async def decide(session: Writer) -> None:
            token = str(uuid.uuid4())
            if queue_everything:
                await self._queue_everything(session, utcnow())
            while True:
                now = utcnow()
                manifests = await reviews.claim_manifest_reviews(session, token, now, now + CLAIM, BATCH)
                for manifest_id in manifests:
                    await self._review_manifest(session, manifest_id, token, report)
                blobs = await reviews.claim_blob_reviews(session, token, now, now + CLAIM, BATCH)
                for digest in blobs:
                    await self._review_blob(session, digest, token, report)
                if not manifests and not blobs:
                    raise _DryRun

        with contextlib.suppress(_DryRun):  # raised to roll the decisions back
            await self.db.write(decide)
        return report

    async def finish_stale_deletions(self) -> None:
        """Bytes a collector that stopped left behind: their rows are gone, their tombstones old."""
        async with self.db.read() as session:
            stale = await reviews.stale_tombstones(session, utcnow() - TOMBSTONE_STALE)
        await finish_deletion(self.backend, self.db, stale)

    async def queue_everything(self, *, now: datetime | None = None) -> None:
        """A full scan: queue every blob no manifest names and every manifest no tag or index holds, so that blobs
        and manifests from before the queues (or lost from them) are reviewed too; and bring forward what was
        queued longer than this collector's delay ago (a server with a longer delay queued it)."""
        when = now or utcnow()
        await self.db.write(partial(self._queue_everything, now=when))

    async def _queue_everything(self, session: Writer, now: datetime) -> None:
        await reviews.queue_unreferenced(session, now, due_now=self.offline)
        await reviews.bring_forward(session, now, now - timedelta(seconds=self.gc.delay))


async def collect_until(stop: asyncio.Event, collector: Collector) -> None:
    """Run the collector every ``storage.gc.interval`` until ``stop`` is set (stopped, never cancelled, so that a
    decision in progress commits or rolls back before the engine closes)."""
    interval = collector.gc.interval
    if await stopped_within(stop, random.uniform(0, interval)):  # workers and replicas spread out
        return
    while True:
        try:
            report = await collector.run_once(dry_run=collector.gc.dryrun)
            if report.manifests or report.blobs or report.links_removed:
                verb = "would collect" if collector.gc.dryrun else "collected"
                log.info("garbage collection %s %s", verb, report.summary())
        except Exception:
            log.exception("garbage collection failed; trying again at the next interval")
        if await stopped_within(stop, interval):
            return
