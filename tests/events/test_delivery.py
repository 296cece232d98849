"""Delivery to a real HTTP receiver in the test process: every event once, per endpoint, whatever another endpoint
does; retried after refusals and outages; claimed by one worker at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from registry.db import migrate, outbox
from registry.db.engine import Database
from registry.db.models import utcnow
from registry.db.outbox import outbox_row
from registry.events.delivery import MAX_BACKOFF, Delivery, backoff
from registry.events.endpoints import Endpoint
from registry.events.envelope import ENVELOPE_MEDIA_TYPE, Event, Source, Target
from tests.api_helpers import client_on, push_image
from tests.events.notifying import database, endpoint, notifying, outbox_events
from tests.events.receiver import Receiver


async def wait_for(receiver: Receiver, count: int) -> None:
    await asyncio.to_thread(receiver.wait_for, lambda r: len(r.events) >= count)


def test_backoff_waits_from_the_threshold_and_doubles_to_a_cap() -> None:
    hook = Endpoint("hook", "http://h/", threshold=3, backoff=0.5)
    assert [backoff(hook, n) for n in range(1, 7)] == [0.0, 0.0, 0.5, 1.0, 2.0, 4.0]
    assert backoff(hook, 1000) == MAX_BACKOFF
    assert backoff(Endpoint("slow", "http://h/", threshold=1, backoff=600.0), 5) == 600.0


async def test_a_push_reaches_the_receiver_once_and_leaves_the_outbox(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver().start()
    try:
        hook = endpoint("hook", receiver.url, headers={"Authorization": ["Bearer secret"]})
        async with client_on(notifying(tmp_path, database_url, hook)) as client:
            _, digest = await push_image(client, "team/app", "v1")
            await wait_for(receiver, 3)
            assert await _eventually_empty(client)
    finally:
        receiver.stop()
    assert [e["target"]["digest"] for e in receiver.manifest_pushes()] == [digest]
    assert len(receiver.events) == 3, "each event once"
    headers = receiver.headers[0]
    assert headers["Content-Type"] == ENVELOPE_MEDIA_TYPE and headers["Authorization"] == "Bearer secret"


async def test_a_dead_endpoint_never_holds_back_another(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver().start()
    try:
        config = notifying(tmp_path, database_url, endpoint("dead"), endpoint("alive", receiver.url))
        async with client_on(config) as client:
            for n in range(3):
                await push_image(client, f"team/app{n}", "v1")
            await wait_for(receiver, 9)
            assert len(await outbox_events(client, "dead")) == 9, "kept until its endpoint takes them"
    finally:
        receiver.stop()
    assert len(receiver.manifest_pushes()) == 3


async def test_refusals_and_an_outage_are_retried_until_everything_arrives(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    receiver.status = 503
    receiver.start()
    hook = endpoint("hook", receiver.url, threshold=2, backoff="10ms")
    try:
        async with client_on(notifying(tmp_path, database_url, hook)) as client:
            await push_image(client, "team/app", "v1")
            await asyncio.to_thread(receiver.wait_for, lambda r: r.refused >= 3)
            receiver.stop()  # down: connections refused
            await push_image(client, "team/app", "v2", seed="2")
            receiver.status = 200
            receiver.start()  # back, on the same port
            await wait_for(receiver, 6)
            assert await _eventually_empty(client)
    finally:
        receiver.stop()
    assert sorted(e["target"]["tag"] for e in receiver.manifest_pushes()) == ["v1", "v2"]
    assert len({e["id"] for e in receiver.events}) == len(receiver.events) == 6


async def test_two_workers_deliver_each_event_once(database_url: str) -> None:
    """Two delivery loops over one database (two workers, or two replicas) share the rows: claims never overlap."""
    db = Database(database_url)
    receiver = Receiver().start()
    try:
        await migrate.upgrade(db)
        now = utcnow()
        rows = [outbox_row("hook", Event("push", Target(f"r{n}"), Source("s")).encoded(), now) for n in range(15)]
        await db.write(lambda session: outbox.add(session, rows))
        async with httpx.AsyncClient() as http:
            workers = [Delivery(Endpoint("hook", receiver.url), db, http, asyncio.Event()) for _ in range(2)]
            workers[0].batch = workers[1].batch = 2
            while any(await asyncio.gather(*(worker.attempt() for worker in workers))):
                pass
        async with db.read() as session:
            assert await outbox.pending(session) == 0
    finally:
        receiver.stop()
        await db.dispose()
    assert sorted(e["target"]["repository"] for e in receiver.events) == sorted(f"r{n}" for n in range(15))


async def _eventually_empty(client: httpx.AsyncClient) -> bool:
    """The outbox is emptied right after the receiver answers: wait for that delete to commit."""
    for _ in range(1000):
        async with database(client).read() as session:
            if await outbox.pending(session) == 0:
                return True
        await asyncio.sleep(0.01)
    return False
