"""Delivery: every worker of every replica runs one loop per endpoint that claims the endpoint's due outbox rows,
posts them in one envelope, and deletes them once the endpoint accepted it (any 2xx or 3xx, as distribution).

Endpoints never wait on each other: each has its own rows, its own loop and its own failure count. A failure hands
the rows back, due again after a delay: none for the first ``threshold - 1`` failures in a row, then ``backoff``,
doubling after each further failure up to MAX_BACKOFF (or ``backoff`` when that is longer), and the loop itself
waits as long before its next attempt, so a dead endpoint costs one request per delay, not one per event. A failed
batch is halved for the next attempt: an event that an endpoint always refuses ends up alone, backing off on its own
count, while the others pass. A claim holds rows for the endpoint's ``timeout`` plus CLAIM_MARGIN: a worker that dies
mid-delivery gives them back then, and they are posted again (at least once; a duplicate only after such a crash).

A push made by this process wakes its loops at once (they wait SETTLE for the commit and for more events to batch);
rows written by other workers or replicas are found within POLL. Pulls wait PULL_SETTLE after the first of a batch: a
busy registry's pulls leave in envelopes of up to MAX_BATCH events (each post costs the sender and the receiver more
than an event in it: with envelopes of 100 events every 20 ms, a webhook cost manifest GETs twice what it does with
500 every 100 ms), at most about PULL_SETTLE after they were served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta
from functools import partial

import httpx

from registry.clock import stopped_within
from registry.db import outbox
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.events.endpoints import Endpoint
from registry.events.envelope import ENVELOPE_MEDIA_TYPE, envelope
from registry.events.posting import PostFailed, poster_for
from registry.events.pulls import PullQueue
from registry.events.sink import EventSink

log = logging.getLogger("registry.events")
MAX_BATCH = 500  # events in one envelope: 500 pulls are about 350 kB
MAX_BACKOFF = 60.0
CLAIM_MARGIN = 30.0
POLL = 1.0
SETTLE = 0.02
PULL_SETTLE = 0.1
LAST_POSTS = 10


def backoff(endpoint: Endpoint, failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row."""
    if failures < endpoint.threshold:
        return 0.0
    cap = max(endpoint.backoff, MAX_BACKOFF)
    return float(min(endpoint.backoff * 2 ** min(failures - endpoint.threshold, 32), cap))


class Delivery:
    """One endpoint's loop in this process: the outbox's due rows first, then the pulls this process queued."""

    def __init__(
        self,
        endpoint: Endpoint,
        db: Database,
        client: httpx.AsyncClient,
        woken: asyncio.Event,
        pulls: PullQueue | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.db = db
        self.client = client
        self.woken = woken  # set when this process writes rows
        self.pulls = PullQueue(endpoint.name) if pulls is None else pulls
        self.failures = 0
        self.batch = MAX_BATCH
        self._claim_at = 0.0  # when to look at the outbox again (time.monotonic())
        self._woken_claim = False
        headers = [*endpoint.headers, ("Content-Type", ENVELOPE_MEDIA_TYPE)]
        self.poster = poster_for(endpoint.url, headers, endpoint.timeout, client)

    async def run_until(self, stop: asyncio.Event) -> None:
        try:
            await self._run_until(stop)
        finally:
            await self.poster.aclose()

    async def _run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.attempt()
            except Exception:
                log.exception("notification endpoint %s: delivery failed", self.endpoint.name)
                delivered, self._claim_at = None, time.monotonic() + POLL
            if delivered is None or (delivered and self._partial()):
                await self._idle(stop)
            elif not delivered and await stopped_within(stop, backoff(self.endpoint, self.failures)):
                break
        await self._last_pulls()

    async def attempt(self) -> bool | None:
        """Post one batch, the outbox's when rows may be due, else pulls: True when delivered, False when refused,
        None when nothing was waiting."""
        if self._claim_due():
            claimed = await self._claim()
            if claimed is not None:
                return await self._deliver_rows(*claimed)
        pulls = self.pulls.take(self.batch)
        if not pulls:
            return None
        if await self._post(envelope(pulls), len(pulls)):
            return self._succeeded()
        self.pulls.give_back(pulls)
        return self._refused()

    def _claim_due(self) -> bool:
        self._woken_claim = self.woken.is_set()
        self.woken.clear()
        return self._woken_claim or time.monotonic() >= self._claim_at

    async def _claim(self) -> tuple[str, list[outbox.Claimed]] | None:
        token, now = str(uuid.uuid4()), utcnow()
        until = now + timedelta(seconds=self.endpoint.timeout + CLAIM_MARGIN)
        claim = partial(outbox.claim, endpoint=self.endpoint.name, token=token, now=now, until=until, limit=self.batch)
        claimed = await self.db.write(claim, durable=False)
        # a full batch: more may be due at once. Else this process's next rows wake the loop, others' are looked for
        # after POLL; after a wake, once more after SETTLE (the wake comes from inside the rows' transaction)
        after = 0.0 if len(claimed) >= self.batch else SETTLE if self._woken_claim else POLL
        self._claim_at = time.monotonic() + after
        return (token, claimed) if claimed else None

    async def _deliver_rows(self, token: str, claimed: list[outbox.Claimed]) -> bool:
        if await self._post(envelope([row.payload for row in claimed]), len(claimed)):
            ids = [row.id for row in claimed]
            await self.db.write(lambda session: outbox.delivered(session, ids), durable=False)
            return self._succeeded()
        self._refused()
        due = [(row.id, self._due(row.attempts + 1)) for row in claimed]
        await self.db.write(lambda session: outbox.release(session, token, due), durable=False)
        self._claim_at = 0.0  # those not handed back to a later time are due again after the back-off
        return False

    def _succeeded(self) -> bool:
        self.failures, self.batch = 0, min(self.batch * 2, MAX_BATCH)
        return True

    def _refused(self) -> bool:
        self.failures, self.batch = self.failures + 1, max(self.batch // 2, 1)
        return False

    def _partial(self) -> bool:
        """Fewer pulls waiting than a batch and no row due: wait a moment for more to post them together."""
        return len(self.pulls) < self.batch and time.monotonic() < self._claim_at

    def _due(self, attempts: int) -> datetime:
        return utcnow() + timedelta(seconds=backoff(self.endpoint, max(attempts, self.failures)))

    async def _post(self, body: bytes, count: int) -> bool:
        """Post an envelope of ``count`` events."""
        try:
            status = await self.poster.post(body)
        except PostFailed as failed:
            self._failed(str(failed), count)
            return False
        if 200 <= status < 400:
            return True
        self._failed(f"status {status}", count)
        return False

    def _failed(self, reason: str, count: int) -> None:
        if self.failures + 1 in (1, self.endpoint.threshold) or (self.failures + 1) % 100 == 0:
            log.warning(
                "notification endpoint %s (%s): %d event(s) not delivered (%s); %d failure(s) in a row, retrying",
                self.endpoint.name, self.endpoint.url, count, reason, self.failures + 1,
            )  # fmt: skip

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until this process writes rows or queues a pull, the outbox is due again (others may have written rows),
        or ``stop``; after a wake, SETTLE more (the rows' transaction commits), or PULL_SETTLE for pulls alone (more
        pulls come to post together)."""
        ready = self.pulls.ready
        if not (self.woken.is_set() or ready.is_set() or stop.is_set()):
            waits = [asyncio.ensure_future(event.wait()) for event in (self.woken, ready, stop)]
            try:
                timeout = min(max(self._claim_at - time.monotonic(), 0.0), POLL)
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        if self.woken.is_set() or ready.is_set():
            self.pulls.unready()
            await stopped_within(stop, SETTLE if self.woken.is_set() else PULL_SETTLE)

    async def _last_pulls(self) -> None:
        """On a graceful stop: the pulls waiting are posted while the endpoint takes them, up to LAST_POSTS batches
        (the rest are lost, as distribution loses its queue; the outbox's rows wait for the next start)."""
        for _ in range(LAST_POSTS):
            pulls = self.pulls.take(MAX_BATCH)
            if not pulls or not await self._post(envelope(pulls), len(pulls)):
                return


async def deliver_until(stop: asyncio.Event, db: Database, sink: EventSink) -> None:
    """Every endpoint's loop until ``stop`` (then they finish what they are doing: stopped, never cancelled)."""
    async with httpx.AsyncClient() as client:  # HTTPS_PROXY and NO_PROXY apply, as to distribution's
        loops = [
            Delivery(e, db, client, sink.listen(), sink.pull_queues[e.name]).run_until(stop) for e in sink.endpoints
        ]
        await asyncio.gather(*loops)
