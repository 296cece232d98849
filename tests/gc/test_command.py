"""``registry gc [--dry-run]`` (safe beside a server: delay and leases hold) and distribution's offline
``registry garbage-collect [--dry-run] [--delete-untagged] config.yml`` over data a server wrote."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from registry import cli
from registry.config import load_config
from registry.db.engine import Database
from registry.db.models import event_outbox
from tests.api_helpers import OCI_MANIFEST, client_on, digest_of, image_manifest, push_blob, put_manifest


def write_config(tmp_path: Path, database_url: str, **gc: str) -> Path:
    doc = {
        "version": "0.1",
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}, "delete": {"enabled": True},
                    **({"gc": gc} if gc else {})},
        "database": {"url": database_url},
    }  # fmt: skip
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def blob_files(tmp_path: Path) -> set[str]:
    root = tmp_path / "data" / "docker/registry/v2/blobs/sha256"
    return {"sha256:" + p.parent.name for p in root.glob("*/*/data")}


async def push(client: httpx.AsyncClient, tag: str | None, layer: bytes) -> str:
    config = b'{"for": "%s"}' % layer
    for blob in (config, layer):
        await push_blob(client, "team/app", blob)
    body = image_manifest(config, [layer])
    assert (await put_manifest(client, "team/app", tag or digest_of(body), body, OCI_MANIFEST)).status_code == 201
    return digest_of(body)


async def server_wrote(tmp_path: Path, config: Path) -> tuple[str, str]:
    """Two images sharing nothing: one deleted by digest, one pushed untagged."""
    async with client_on(load_config(str(config))) as client:
        deleted = await push(client, "v1", b"deleted layer")
        assert (await client.delete(f"/v2/team/app/manifests/{deleted}")).status_code == 202
        untagged = await push(client, None, b"untagged layer")
    return deleted, untagged


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    await asyncio.to_thread(cli.main, list(argv))  # the command runs its own event loop
    return capsys.readouterr().out


async def test_registry_gc_keeps_what_the_delay_and_leases_protect_then_garbage_collect_frees_it(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, database_url)
    await server_wrote(tmp_path, config)
    before = blob_files(tmp_path)

    out = await run(capsys, "gc", str(config))
    assert out.splitlines()[-1].startswith("freed: 0 manifest(s) and 0 blob(s)"), out
    assert blob_files(tmp_path) == before

    out = await run(capsys, "garbage-collect", "--dry-run", str(config))
    assert f"would delete blob {digest_of(b'deleted layer')}" in out
    assert "nothing was deleted" in out and blob_files(tmp_path) == before

    out = await run(capsys, "garbage-collect", str(config))
    assert blob_files(tmp_path) == before - {digest_of(b"deleted layer"), digest_of(b'{"for": "deleted layer"}')}
    assert "deleted manifest" not in out, "untagged manifests stay without --delete-untagged"


async def test_garbage_collect_delete_untagged(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, database_url)
    _, untagged = await server_wrote(tmp_path, config)
    out = await run(capsys, "garbage-collect", "-m", str(config))
    assert f"deleted manifest team/app@{untagged}" in out
    assert blob_files(tmp_path) == set()


async def test_registry_gc_with_a_zero_delay(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, database_url, delay="0s", lease="0s", untagged="0s")
    _, untagged = await server_wrote(tmp_path, config)
    out = await run(capsys, "gc", "--dry-run", str(config))
    assert f"would delete manifest team/app@{untagged}" in out and len(blob_files(tmp_path)) == 4
    await run(capsys, "gc", str(config))
    assert blob_files(tmp_path) == set()


async def test_registry_gc_with_a_shorter_delay_than_the_server_that_queued(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server (delay 24h) queued the deleted image's blobs for tomorrow; `registry gc` run with a delay of 0s takes
    them now (leases still hold: the server's are 0s here)."""
    config = write_config(tmp_path, database_url, lease="0s")
    await server_wrote(tmp_path, config)
    before = blob_files(tmp_path)
    monkeypatch.setenv("REGISTRY_STORAGE_GC_DELAY", "0s")
    await run(capsys, "gc", str(config))
    assert blob_files(tmp_path) == before - {digest_of(b"deleted layer"), digest_of(b'{"for": "deleted layer"}')}


async def test_registry_gc_applies_retention_first(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, database_url, delay="0s", lease="0s", untagged="0s")
    doc = yaml.safe_load(config.read_text())
    doc["retention"] = {"policies": [{"repositories": ["team/*"], "keep": {"last": 1}}]}
    config.write_text(yaml.safe_dump(doc))
    async with client_on(load_config(str(config))) as client:
        await push(client, "old", b"old layer")
        await push(client, "new", b"new layer")
    out = await run(capsys, "gc", "--dry-run", str(config))
    assert "would delete tag team/app:old (retention)" in out and len(blob_files(tmp_path)) == 4
    out = await run(capsys, "gc", str(config))
    assert "deleted tag team/app:old (retention)" in out
    assert blob_files(tmp_path) == {digest_of(b"new layer"), digest_of(b'{"for": "new layer"}')}


async def delete_events(database_url: str) -> list[dict[str, Any]]:
    """The delete events waiting in the outbox, oldest first."""
    database = Database(database_url)
    try:
        async with database.read() as session:
            rows = (await session.scalars(select(event_outbox.c.payload).order_by(event_outbox.c.id))).all()
    finally:
        await database.dispose()
    return [event for event in map(json.loads, rows) if event["action"] == "delete"]


async def test_registry_gc_reports_its_deletions_through_the_outbox(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `registry gc` deletes is told to the configured endpoints as the server's deletions are: each event in the
    outbox, in its deleting transaction, for a server to deliver."""
    config = write_config(tmp_path, database_url, delay="0s", lease="0s", untagged="0s")
    doc = yaml.safe_load(config.read_text())
    doc["retention"] = {"policies": [{"repositories": ["team/*"], "keep": {"last": 1}}]}
    hook = {"name": "hook", "url": "http://127.0.0.1:9/events", "threshold": 1, "backoff": "1h"}  # nothing listens
    doc["notifications"] = {"endpoints": [hook]}
    config.write_text(yaml.safe_dump(doc))
    async with client_on(load_config(str(config))) as client:
        old = await push(client, "old", b"old layer")
        await push(client, "new", b"new layer")
    await run(capsys, "gc", "--dry-run", str(config))
    assert await delete_events(database_url) == [], "a dry run reports nothing"
    out = await run(capsys, "gc", str(config))
    assert f"deleted manifest team/app@{old}" in out
    events = await delete_events(database_url)
    assert [event["target"] for event in events] == [
        {"repository": "team/app", "tag": "old"},
        {"repository": "team/app", "digest": old},
    ]
    assert all("request" not in event and event["source"]["addr"] for event in events)
