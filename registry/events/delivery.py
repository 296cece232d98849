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
rows written by other workers or replicas are found within POLL.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from functools import partial

import httpx

from registry.content.purge import stopped_within
from registry.db import outbox
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.events.endpoints import Endpoint
from registry.events.envelope import ENVELOPE_MEDIA_TYPE, envelope
from registry.events.sink import EventSink

log = logging.getLogger("registry.events")
MAX_BATCH = 100
MAX_BACKOFF = 60.0
CLAIM_MARGIN = 30.0
POLL = 1.0
SETTLE = 0.02


def backoff(endpoint: Endpoint, failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row."""
    if failures < endpoint.threshold:
        return 0.0
    cap = max(endpoint.backoff, MAX_BACKOFF)
    return float(min(endpoint.backoff * 2 ** min(failures - endpoint.threshold, 32), cap))


class Delivery:
    """One endpoint's loop in this process."""

    def __init__(self, endpoint: Endpoint, db: Database, client: httpx.AsyncClient, woken: asyncio.Event) -> None:
        self.endpoint = endpoint
        self.db = db
        self.client = client
        self.woken = woken
        self.failures = 0
        self.batch = MAX_BATCH
        self._headers = [*endpoint.headers, ("Content-Type", ENVELOPE_MEDIA_TYPE)]

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.attempt()
            except Exception:
                log.exception("notification endpoint %s: delivery failed", self.endpoint.name)
                delivered = None
            if delivered is None:
                await self._idle(stop)
            elif not delivered and await stopped_within(stop, backoff(self.endpoint, self.failures)):
                return

    async def attempt(self) -> bool | None:
        """Claim and post one batch: True when delivered, False when refused, None when nothing was due."""
        token, now = str(uuid.uuid4()), utcnow()
        until = now + timedelta(seconds=self.endpoint.timeout + CLAIM_MARGIN)
        claim = partial(outbox.claim, endpoint=self.endpoint.name, token=token, now=now, until=until, limit=self.batch)
        claimed = await self.db.write(claim, durable=False)
        if not claimed:
            return None
        if await self._post([row.payload for row in claimed]):
            ids = [row.id for row in claimed]
            await self.db.write(lambda session: outbox.delivered(session, ids), durable=False)
            self.failures, self.batch = 0, min(self.batch * 2, MAX_BATCH)
            return True
        self.failures, self.batch = self.failures + 1, max(self.batch // 2, 1)
        due = [(row.id, self._due(row.attempts + 1)) for row in claimed]
        await self.db.write(lambda session: outbox.release(session, token, due), durable=False)
        return False

    def _due(self, attempts: int) -> datetime:
        return utcnow() + timedelta(seconds=backoff(self.endpoint, max(attempts, self.failures)))

    async def _post(self, payloads: list[str]) -> bool:
        endpoint = self.endpoint
        try:
            response = await self.client.post(
                endpoint.url, content=envelope(payloads), headers=self._headers, timeout=endpoint.timeout
            )
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}: {exc}", len(payloads))
            return False
        if 200 <= response.status_code < 400:
            return True
        self._failed(f"status {response.status_code}", len(payloads))
        return False

    def _failed(self, reason: str, count: int) -> None:
        if self.failures + 1 in (1, self.endpoint.threshold) or (self.failures + 1) % 100 == 0:
            log.warning(
                "notification endpoint %s (%s): %d event(s) not delivered (%s); %d failure(s) in a row, retrying",
                self.endpoint.name, self.endpoint.url, count, reason, self.failures + 1,
            )  # fmt: skip

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until this process writes events, POLL passes (others may have), or ``stop``."""
        waits = [asyncio.ensure_future(self.woken.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=POLL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        self.woken.clear()
        await asyncio.sleep(SETTLE)


async def deliver_until(stop: asyncio.Event, db: Database, sink: EventSink) -> None:
    """Every endpoint's loop, and the writer of buffered pull events, until ``stop`` (then they finish what they
    are doing: stopped, never cancelled)."""
    async with httpx.AsyncClient() as client:  # HTTPS_PROXY and NO_PROXY apply, as to distribution's
        loops = [Delivery(endpoint, db, client, sink.listen()).run_until(stop) for endpoint in sink.endpoints]
        await asyncio.gather(sink.flush_pulls_until(stop, db), *loops)
