"""Pull events live in memory, as distribution's do: a GET captures a few raw values, their events are written a
batch at a time into the queue of each endpoint that wants them, and the endpoint's loop posts them; no outbox row is
ever written for a pull, and a full queue drops its oldest pull, counted and warned about."""

from __future__ import annotations

import asyncio
import calendar
import gc
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from registry.app import create_app
from registry.config import Config
from registry.db import outbox
from registry.events import pulls as pulls_module
from registry.events import requests as requests_module
from registry.events.endpoints import Endpoint
from registry.events.envelope import Source
from registry.events.pulls import PULL_FIELDS, Pull, PullEvents, PullQueue
from tests.api_helpers import OCI_MANIFEST, client_on, push_blob, push_image
from tests.conftest import make_config
from tests.events.notifying import database, endpoint, notifying, outbox_events, sink
from tests.events.receiver import Receiver

BLOB = "application/octet-stream"


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started = [Receiver().start() for _ in range(3)]
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every payload the outbox is ever given."""
    payloads: list[str] = []
    add = outbox.add

    async def spied(session: Any, rows: Sequence[dict[str, Any]]) -> None:
        payloads.extend(str(row["payload"]) for row in rows)
        await add(session, rows)

    monkeypatch.setattr(outbox, "add", spied)
    return payloads


async def wait_for(receiver: Receiver, count: int) -> None:
    await asyncio.to_thread(receiver.wait_for, lambda r: len(r.events) >= count)


def pulls_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [event for event in receiver.events if event["action"] == "pull"]


async def test_pulls_reach_each_endpoint_that_wants_them_and_never_the_outbox(
    tmp_path: Path, database_url: str, receivers: list[Receiver], written: list[str]
) -> None:
    everything, manifests, no_pulls = receivers
    hooks = [
        endpoint("all", everything.url),
        endpoint("manifests", manifests.url, ignoredmediatypes=[BLOB]),
        endpoint("no-pulls", no_pulls.url, ignore={"actions": ["pull"]}),
    ]
    async with client_on(notifying(tmp_path, database_url, *hooks)) as client:
        _, digest = await push_image(client, "team/app", "v1")
        layer = await push_blob(client, "team/app", b"a layer pulled")
        assert (await client.head("/v2/team/app/manifests/v1")).status_code == 200  # a HEAD is no pull
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 200
        assert (await client.get(f"/v2/team/app/blobs/{layer}")).status_code == 200
        await wait_for(everything, 4 + 2)  # the pushes of three blobs and a manifest, then two pulls
        await wait_for(manifests, 1 + 1)
        await wait_for(no_pulls, 4)
        async with database(client).read() as session:
            assert await outbox.pending(session) == 0
        assert await outbox_events(client) == []
    # the app has stopped: whatever was still queued was posted then (each endpoint took it)
    assert [(e["target"]["digest"], e["target"].get("tag")) for e in pulls_of(everything)] == [
        (digest, "v1"),
        (layer, None),
    ]
    assert [e["target"]["digest"] for e in pulls_of(manifests)] == [digest]
    assert pulls_of(no_pulls) == []
    assert written and not any('"action":"pull"' in payload for payload in written), "pushes only, never a pull"
    same = {e["id"] for e in pulls_of(everything)} & {e["id"] for e in pulls_of(manifests)}
    assert len(same) == 1, "one event, one id, whichever endpoint it is posted to"


async def test_a_pull_event_has_distributions_fields(
    tmp_path: Path, database_url: str, receivers: list[Receiver]
) -> None:
    receiver = receivers[0]
    async with client_on(notifying(tmp_path, database_url, endpoint("hook", receiver.url))) as client:
        body, digest = await push_image(client, "team/app", "v1")
        headers = {"User-Agent": "docker/27.0 go/1.22", "X-Request-Id": "req-pull-1"}
        assert (await client.get("/v2/team/app/manifests/v1", headers=headers)).status_code == 200
        await wait_for(receiver, 4)
    (pull,) = pulls_of(receiver)
    assert pull["target"] == {
        "mediaType": OCI_MANIFEST,
        "size": len(body),
        "digest": digest,
        "length": len(body),
        "repository": "team/app",
        "url": f"http://registry.test/v2/team/app/manifests/{digest}",
        "tag": "v1",
        "references": [
            {"mediaType": r["mediaType"], "size": r["size"], "digest": r["digest"]}
            for r in pull["target"]["references"]
        ],
    }
    assert [r["mediaType"] for r in pull["target"]["references"]] == [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ], "events.includereferences lists the config and the layers"
    assert pull["request"] == {
        "id": "req-pull-1",
        "addr": "127.0.0.1:123",
        "host": "registry.test",
        "method": "GET",
        "useragent": "docker/27.0 go/1.22",
    }
    assert pull["actor"] == {} and pull["source"] == receiver.events[0]["source"]
    assert list(pull) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
    assert pull["timestamp"].endswith("Z") and pull["id"] not in {e["id"] for e in receiver.events if e is not pull}


async def test_a_pull_behind_a_trusted_proxy_names_the_proxys_url(
    tmp_path: Path, database_url: str, receivers: list[Receiver]
) -> None:
    receiver = receivers[0]
    async with client_on(notifying(tmp_path, database_url, endpoint("hook", receiver.url))) as client:
        layer = await push_blob(client, "team/app", b"behind a proxy")
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example"}
        assert (await client.get(f"/v2/team/app/blobs/{layer}", headers=forwarded)).status_code == 200
        assert (await client.get(f"/v2/team/app/blobs/{layer}")).status_code == 200
        await wait_for(receiver, 3)
    assert [e["target"]["url"] for e in pulls_of(receiver)] == [
        f"https://registry.example/v2/team/app/blobs/{layer}",
        f"http://registry.test/v2/team/app/blobs/{layer}",
    ]
    assert [e["request"]["host"] for e in pulls_of(receiver)] == ["registry.example", "registry.test"], (
        "the Host the trusted proxy forwarded, not the one the server first read"
    )


async def test_a_pull_whose_event_cannot_be_written_is_logged_and_the_get_never_sees_it(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: PullEvents, pull: Pull) -> str:
        raise RuntimeError("writer bug")

    async with client_on(notifying(tmp_path, database_url, endpoint("hook"))) as client:
        await push_image(client, "team/app", "v1")
        monkeypatch.setattr(PullEvents, "encoded", broken)
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 200
        assert not sink(client).pull_queues["hook"].take(10)  # the take writes the pulls captured
    assert "writing the event of a pull of team/app@sha256:" in caplog.text and "writer bug" in caplog.text


async def test_pulls_queued_for_a_dead_endpoint_are_dropped_oldest_first(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("registry.events.pulls.MAX_QUEUED", 3)
    async with client_on(notifying(tmp_path, database_url, endpoint("dead"))) as client:
        layers = [await push_blob(client, "team/app", f"layer {n}".encode()) for n in range(6)]
        for layer in layers:
            assert (await client.get(f"/v2/team/app/blobs/{layer}")).status_code == 200
        sink(client).pull_events.write_captured()
        queue = sink(client).pull_queues["dead"]
        # the dead endpoint's loop may hold a batch it is failing to post: it comes back in front, room permitting
        waiting = [json.loads(event)["target"]["digest"] for event in queue.waiting]
        assert len(waiting) <= 3 and waiting == layers[len(layers) - len(waiting) :]
        assert queue.dropped >= 3
        assert not any(gc.is_tracked(event) for event in queue.waiting), "strings: never walked by the collector"


# --- the queue ---


def pull(n: int) -> str:
    return f"d{n}"  # what a queue holds: an event's JSON


def digests(queue: PullQueue) -> list[str]:
    return list(queue.waiting)


def test_a_full_queue_drops_its_oldest_pull_and_warns_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    queue = PullQueue("hook", limit=3)
    with caplog.at_level(logging.WARNING, "registry.events"):
        for n in range(5):
            queue.put(pull(n))
        assert digests(queue) == ["d2", "d3", "d4"] and queue.dropped == 2
        queue.put(pull(5))
    assert queue.dropped == 3
    (warning,) = caplog.records
    assert "notification endpoint hook: 1 pull event(s) dropped" in warning.getMessage()


def test_the_warning_comes_again_after_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([1000.0, 1030.0, 1061.0])
    monkeypatch.setattr(pulls_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    queue = PullQueue("hook", limit=1)
    with caplog.at_level(logging.WARNING, "registry.events"):
        for n in range(4):
            queue.put(pull(n))
    assert [record.getMessage().split(": ")[1].split()[0] for record in caplog.records] == ["1", "3"]


def test_refused_pulls_come_back_in_front_as_far_as_there_is_room() -> None:
    queue = PullQueue("hook", limit=4)
    for n in range(4):
        queue.put(pull(n))
    batch = queue.take(3)
    queue.put(pull(4))
    queue.put(pull(5))
    queue.give_back(batch)  # room for one: the newest of the batch; the two older ones are dropped
    assert digests(queue) == ["d2", "d3", "d4", "d5"] and queue.dropped == 2
    (alone,) = queue.take(1)
    queue.give_back([alone])  # refused on its own: behind the others, so that it holds none back
    assert digests(queue) == ["d3", "d4", "d5", "d2"]


# --- the rendering: what the GET captured, written as distribution's event ---

DIGEST = "sha256:" + "e" * 64
REFERENCES = (("application/vnd.oci.image.config.v1+json", 7, DIGEST),)
CAPTURED: dict[str, Any] = {
    "number": 7, "at": 1_714_564_800_123_456, "route": "manifest", "repository": "team/app", "digest": DIGEST,
    "media_type": OCI_MANIFEST, "size": 42, "reference": "v1", "references": REFERENCES, "request_id": "req-1",
    "client_host": "10.0.0.1", "client_port": 40000, "method": "GET", "scheme": "https", "server_host": "10.0.0.2",
    "server_port": 5000,
    "host": b"registry.example:5000", "useragent": 'docker/27.0 "quoted" caf\xe9'.encode("latin-1"), "actor": "alice",
}  # fmt: skip


def captured(**changes: Any) -> Pull:
    fields = CAPTURED | changes
    return cast(Pull, tuple(fields[name] for name in PULL_FIELDS))


@pytest.mark.parametrize(
    ("changes", "env"),
    [
        ({}, {}),
        ({"route": "blob", "media_type": BLOB, "reference": "", "references": (), "actor": ""}, {}),
        ({"reference": DIGEST}, {}),  # asked by digest: no tag
        ({"host": b"", "client_host": "", "client_port": None, "request_id": ""}, {}),  # no Host, no id: made
        ({"server_port": 443, "host": b"", "useragent": b"ua"}, {}),  # https on 443: no port in the URL
        ({}, {"REGISTRY_HTTP_RELATIVEURLS": "true"}),
        ({}, {"REGISTRY_HTTP_HOST": "https://registry.example.org/"}),
        ({"method": ""}, {}),  # reported outside a request: no request, no URL
    ],
)
def test_a_pull_is_written_as_the_event_object_would_be(
    tmp_path: Path, changes: dict[str, Any], env: dict[str, str]
) -> None:
    config = make_config(tmp_path, "inmemory", **env)
    events = PullEvents(Source("registry-1:5000", "instance-1"), config.http)
    events.app = create_app(config)
    for _ in range(2):  # then from what was kept
        written = events.encoded(captured(**changes))
        found = json.loads(written)
        request_id = found["request"]["id"] if "request" in found else ""
        assert written == events.event(captured(**changes | {"request_id": request_id})).encoded()
    assert found["timestamp"] == "2024-05-01T12:00:00.123456Z" and uuid.UUID(found["id"]).version == 4
    assert events.encoded(captured(**changes | {"request_id": request_id})) == written, "one pull, one id"
    assert ("url" in found["target"]) == bool(found.get("request"))
    if "url" in found["target"]:
        route = "manifests" if found["target"]["mediaType"] == OCI_MANIFEST else "blobs"
        assert found["target"]["url"].endswith(f"/v2/team/app/{route}/{DIGEST}")
    if found["target"].get("references"):
        assert found["target"]["references"] == [{"mediaType": REFERENCES[0][0], "size": 7, "digest": DIGEST}]


def test_pulls_written_one_after_the_other_keep_their_own_ids_and_addresses(tmp_path: Path) -> None:
    config = make_config(tmp_path, "inmemory")
    events = PullEvents(Source("registry-1:5000", "instance-1"), config.http)
    events.app = create_app(config)
    batch = [
        captured(number=n, request_id=f"req-{n}", client_port=40000 + n, **changes)
        for n, changes in enumerate([{}, {"route": "blob", "media_type": BLOB, "reference": "", "references": ()}, {}])
    ]
    found = [json.loads(events.encoded(pull)) for pull in batch]  # the kept parts of one serve the next
    assert [e["request"]["id"] for e in found] == ["req-0", "req-1", "req-2"]
    assert [e["request"]["addr"] for e in found] == ["10.0.0.1:40000", "10.0.0.1:40001", "10.0.0.1:40002"]
    assert [e["target"]["mediaType"] for e in found] == [OCI_MANIFEST, BLOB, OCI_MANIFEST]
    assert len({e["id"] for e in found}) == 3


@contextmanager
def in_request(config: Config) -> Iterator[None]:
    """Within a GET as ``RequestObserving`` sees it, with the values of CAPTURED."""
    host, useragent = CAPTURED["host"], CAPTURED["useragent"]
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "scheme": "https", "headers": [(b"host", host), (b"user-agent", useragent)],
        "client": ("10.0.0.1", 40000), "server": ("10.0.0.2", 5000), "app": create_app(config),
        "state": {"grants": SimpleNamespace(subject="alice")},
    }  # fmt: skip
    token = requests_module._current.set(requests_module.Current("req-1", scope, scope["headers"], host, useragent))
    try:
        yield
    finally:
        requests_module._current.reset(token)


def test_a_pull_captured_on_the_get_is_written_as_the_general_way_writes(tmp_path: Path) -> None:
    """The event of each pull ``pulled`` captured, the first of a content and client and those after it, written
    once the request is over, is what ``encoded`` writes for the values the request had."""
    config = make_config(tmp_path, "inmemory")
    events = PullEvents(Source("registry-1:5000", "instance-1"), config.http, [Endpoint("hook", "http://hooks.test/")])
    with in_request(config):
        for _ in range(3):  # the first keeps what the others use
            events.pulled("manifest", "team/app", DIGEST, OCI_MANIFEST, 42, "v1")
    written = events.queues["hook"].take(10)
    assert len(written) == 3
    for number, text in enumerate(written):
        stamp = json.loads(text)["timestamp"]
        at = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) * 1_000_000 + int(stamp[20:26])
        assert text == events.encoded(captured(number=number, at=at, references=()))


def test_pulls_are_written_a_batch_at_a_time_with_the_time_each_was_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, "inmemory")
    events = PullEvents(Source("registry-1:5000", "instance-1"), config.http, [Endpoint("hook", "http://hooks.test/")])
    queue = events.queues["hook"]
    served = itertools.count(1_714_564_800_000_000_000, 1_000_000)  # 2024-05-01T12:00:00Z, then a GET a millisecond
    monkeypatch.setattr(time, "time_ns", lambda: next(served))
    with in_request(config):
        for _ in range(pulls_module.BATCH - 1):
            events.pulled("manifest", "team/app", DIGEST, OCI_MANIFEST, 42, "v1")
        assert not queue.waiting and queue.ready.is_set(), "captured, and the delivery loop woken to write them"
        events.pulled("manifest", "team/app", DIGEST, OCI_MANIFEST, 42, "v1")
        assert len(queue.waiting) == pulls_module.BATCH, "written by the GET that completed the batch"
        events.pulled("blob", "team/app", DIGEST, BLOB, 42, "")
    assert len(queue.waiting) == pulls_module.BATCH
    written = [json.loads(event) for event in queue.take(100)]  # the take writes the one captured after the batch
    assert [event["timestamp"] for event in written] == [
        f"2024-05-01T12:00:00.{n * 1000:06d}Z" for n in range(pulls_module.BATCH + 1)
    ], "each the time of its GET, not of its writing"
    assert [event["target"]["mediaType"] for event in written] == [OCI_MANIFEST] * pulls_module.BATCH + [BLOB]
    assert len({event["id"] for event in written}) == pulls_module.BATCH + 1
