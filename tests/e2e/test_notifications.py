"""Webhook notifications from a real server process to a real HTTP receiver, with docker pushing: one push event per
manifest with docker's digest; the event survives the registry killed -9 right after the 201; a receiver that is
down for a while gets everything once it is back."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.events.receiver import Receiver

from .daemons import DockerDaemon, docker_push
from .images import AppImage, build_app_image
from .procs import wait_until
from .server import RegistryServer, needs_our_server, server_kind

pytestmark = [pytest.mark.e2e, needs_our_server("a durable notification outbox")]
BLOBS_PER_IMAGE = 4  # three layers and a config


@pytest.fixture
def image(dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path) -> Iterator[AppImage]:
    built = build_app_image(dockerd, busybox_rootfs, tmp_path, f"e2e-local/notify-{tmp_path.name.lower()}:v1")
    yield built
    dockerd.run("rmi", "--force", built.image_id, check=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()  # not started: each test says when it listens
    yield made
    made.stop()


@pytest.fixture
def server(tmp_path: Path, receiver: Receiver) -> Iterator[RegistryServer]:
    hook = {"name": "e2e", "url": receiver.url, "timeout": "2s", "threshold": 1, "backoff": "50ms"}
    made = RegistryServer(tmp_path / "registry", server_kind(), extra_config={"notifications": {"endpoints": [hook]}})
    made.start()
    yield made
    made.stop()


def push(dockerd: DockerDaemon, image: AppImage, ref: str) -> str:
    dockerd.run("tag", image.tag, ref)
    return docker_push(dockerd, ref)[0]


def waiting(server: RegistryServer) -> int:
    """Rows in the outbox (the server's SQLite database, read beside it)."""
    with closing(sqlite3.connect(server.root / "data" / "registry.db")) as connection:
        return int(connection.execute("SELECT count(*) FROM event_outbox").fetchone()[0])


def wait_for_all(receiver: Receiver, server: RegistryServer, pushes: int) -> list[dict[str, Any]]:
    """Until the receiver has the manifests' pushes and the outbox is empty: then nothing more will come."""
    receiver.wait_for(lambda r: len(r.manifest_pushes()) >= pushes, timeout=60)
    wait_until(lambda: waiting(server) == 0, what="an empty outbox", daemon=server.daemon)
    return receiver.manifest_pushes()


def test_one_push_event_per_manifest_with_dockers_digest(
    dockerd: DockerDaemon, server: RegistryServer, receiver: Receiver, image: AppImage
) -> None:
    receiver.start()
    digest = push(dockerd, image, f"{server.host}/e2e/notify:v1")
    (event,) = wait_for_all(receiver, server, 1)
    assert (event["target"]["digest"], event["target"]["repository"], event["target"]["tag"]) == (
        digest,
        "e2e/notify",
        "v1",
    )
    assert event["request"]["useragent"].startswith("docker/"), event["request"]
    blob_pushes = [e for e in receiver.events if e["action"] in ("push", "mount") and e not in [event]]
    assert len(blob_pushes) == BLOBS_PER_IMAGE, [e["target"]["digest"] for e in blob_pushes]


def test_the_event_survives_a_kill_right_after_the_201(
    dockerd: DockerDaemon, server: RegistryServer, receiver: Receiver, image: AppImage
) -> None:
    """The receiver is down while docker pushes, so the event cannot have left before the kill."""
    digest = push(dockerd, image, f"{server.host}/e2e/notify:v1")
    assert server.daemon is not None
    os.kill(server.daemon.pid, signal.SIGKILL)
    assert server.stop() == -signal.SIGKILL
    assert waiting(server) >= 1 + BLOBS_PER_IMAGE, "the outbox holds the push's events"
    receiver.start()
    server.start()
    (event,) = wait_for_all(receiver, server, 1)
    assert event["target"]["digest"] == digest


def test_a_receiver_down_for_a_while_gets_everything_when_it_is_back(
    dockerd: DockerDaemon, server: RegistryServer, receiver: Receiver, image: AppImage
) -> None:
    digests = [push(dockerd, image, f"{server.host}/e2e/notify{n}:v1") for n in range(2)]
    receiver.start()
    events = wait_for_all(receiver, server, 2)
    assert sorted(e["target"]["digest"] for e in events) == sorted(digests)
    assert sorted(e["target"]["repository"] for e in events) == ["e2e/notify0", "e2e/notify1"]


def pull_manifest(receiver: Receiver, url: str) -> dict[str, Any]:
    """GET the pushed manifest by tag, as docker pulls it; the pull event the receiver then gets."""
    pulls = len([e for e in receiver.events if e["action"] == "pull"])
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    response = httpx.get(f"{url}/v2/e2e/notify/manifests/v1", headers={"Accept": accept}, trust_env=False)
    assert response.status_code == 200, response.text
    receiver.wait_for(lambda r: len([e for e in r.events if e["action"] == "pull"]) > pulls, timeout=60)
    return [e for e in receiver.events if e["action"] == "pull"][pulls]


def shape(event: dict[str, Any]) -> dict[str, Any]:
    """An event's keys, nested: what a receiver written for distribution reads."""
    return {key: sorted(value) if isinstance(value, dict) else None for key, value in event.items()}


def test_the_same_config_starts_distribution_and_its_events_have_our_shape(
    dockerd: DockerDaemon, tmp_path: Path, server: RegistryServer, receiver: Receiver, image: AppImage
) -> None:
    """distribution 2.8.2 reads the same notifications section, and a receiver gets the same fields from both."""
    assert server.config is not None
    extra = {"notifications": yaml.safe_load(server.config.read_text())["notifications"]}
    reference = RegistryServer(tmp_path / "distribution", "distribution", extra_config=extra)
    receiver.start()
    try:
        reference.start()
        push(dockerd, image, f"{reference.host}/e2e/notify:v1")
        receiver.wait_for(lambda r: len(r.manifest_pushes()) == 1, timeout=60)
        (theirs,) = receiver.manifest_pushes()
        their_pull = pull_manifest(receiver, reference.url)
    finally:
        reference.stop()
    push(dockerd, image, f"{server.host}/e2e/notify:v1")
    receiver.wait_for(lambda r: len(r.manifest_pushes()) == 2, timeout=60)
    ours = receiver.manifest_pushes()[1]
    assert shape(ours) == shape(theirs)
    assert ours["target"]["digest"] == theirs["target"]["digest"]
    our_pull = pull_manifest(receiver, server.url)  # from the in-memory queue, never the outbox
    assert shape(our_pull) == shape(their_pull), (our_pull, their_pull)
    assert (our_pull["target"]["digest"], our_pull["target"]["tag"]) == (ours["target"]["digest"], "v1")
    assert receiver.headers[-1]["Content-Type"] == "application/vnd.docker.distribution.events.v1+json"
