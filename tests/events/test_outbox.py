"""Events go to the outbox in the transaction of the change they report: one row per endpoint that wants them,
none for a change that did not happen, none at all without an endpoint (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

from pathlib import Path

import httpx

from registry.db import outbox
from registry.gc.collector import Collector
from tests.api_helpers import (
    OCI_MANIFEST,
    app_of,
    client_on,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)
from tests.conftest import make_config
from tests.events.notifying import database, endpoint, notifying, outbox_events, summary

MANIFEST_PUSH = ("push", "team/app", "v1")


async def test_a_push_writes_one_event_per_blob_and_one_per_tagged_manifest(tmp_path: Path, database_url: str) -> None:
    async with client_on(notifying(tmp_path, database_url, endpoint("hook"))) as client:
        body, digest = await push_image(client, "team/app", "v1")
        events = await outbox_events(client)
    assert summary(events) == [
        ("push", "team/app", "application/octet-stream"),
        ("push", "team/app", "application/octet-stream"),
        MANIFEST_PUSH,
    ]
    manifest = events[-1]
    assert manifest["target"]["digest"] == digest and manifest["target"]["size"] == len(body)
    assert manifest["target"]["mediaType"] == OCI_MANIFEST
    assert manifest["target"]["url"] == f"http://registry.test/v2/team/app/manifests/{digest}"
    assert [r["mediaType"] for r in manifest["target"]["references"]] == [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ], "events.includereferences lists the config and the layers"
    assert manifest["request"]["method"] == "PUT" and manifest["request"]["addr"] == "127.0.0.1:123"
    assert len({e["id"] for e in events}) == 3


async def test_a_refused_manifest_leaves_no_event(tmp_path: Path, database_url: str) -> None:
    async with client_on(notifying(tmp_path, database_url, endpoint("hook"))) as client:
        body = image_manifest(b"config never pushed", [])
        assert (await put_manifest(client, "team/app", "v1", body)).status_code == 400
        assert await outbox_events(client) == []


async def test_each_endpoint_gets_its_own_rows_and_its_filters(tmp_path: Path, database_url: str) -> None:
    manifests_only = endpoint("manifests", ignoredmediatypes=["application/octet-stream"])
    no_pushes = endpoint("no-pushes", ignore={"actions": ["push"]})
    async with client_on(notifying(tmp_path, database_url, endpoint("all"), manifests_only, no_pushes)) as client:
        await push_image(client, "team/app", "v1")
        assert (await client.delete("/v2/team/app/manifests/v1")).status_code == 202
        assert len(await outbox_events(client, "all")) == 4
        assert summary(await outbox_events(client, "manifests")) == [MANIFEST_PUSH, ("delete", "team/app", "v1")]
        assert [e["action"] for e in await outbox_events(client, "no-pushes")] == ["delete"]


async def test_deletes_and_mounts(tmp_path: Path, database_url: str) -> None:
    async with client_on(notifying(tmp_path, database_url, endpoint("hook"))) as client:
        _, digest = await push_image(client, "team/app", "v1")
        layer = await push_blob(client, "team/app", b"a layer to mount")
        mounted = await client.post("/v2/team/other/blobs/uploads/", params={"mount": layer, "from": "team/app"})
        assert mounted.status_code == 201
        assert (await client.get(f"/v2/team/app/blobs/{layer}")).status_code == 200  # a pull: never in the outbox
        assert (await client.delete("/v2/team/app/manifests/v1")).status_code == 202
        assert (await client.delete(f"/v2/team/app/manifests/{digest}")).status_code == 202
        assert (await client.delete("/v2/team/app/manifests/v1")).status_code == 404  # no event for nothing
        events = (await outbox_events(client))[4:]  # after the image's and the blob's pushes
    mount, delete_tag, delete_manifest = events
    assert (mount["action"], mount["target"]["repository"]) == ("mount", "team/other")
    assert mount["target"]["fromRepository"] == "team/app" and mount["target"]["digest"] == layer
    assert (delete_tag["action"], delete_tag["target"]) == ("delete", {"repository": "team/app", "tag": "v1"})
    assert (delete_manifest["action"], delete_manifest["target"]) == (
        "delete",
        {"repository": "team/app", "digest": digest},
    )


async def test_the_collector_reports_each_manifest_it_deletes(tmp_path: Path, database_url: str) -> None:
    config = notifying(tmp_path, database_url, endpoint("hook"), REGISTRY_STORAGE_GC_UNTAGGED="0s")
    async with client_on(config) as client:
        body = image_manifest(b"{}", [])
        await push_blob(client, "team/app", b"{}")
        assert (await put_manifest(client, "team/app", digest_of(body), body)).status_code == 201
        collector: Collector = app_of(client).state.collector
        report = await collector.run_once()
        assert report.manifests == [("team/app", digest_of(body))]
        deleted = (await outbox_events(client))[-1]
    assert deleted["action"] == "delete" and "request" not in deleted
    assert deleted["target"] == {"repository": "team/app", "digest": digest_of(body)}


async def test_without_endpoints_nothing_is_written(tmp_path: Path, database_url: str) -> None:
    config = make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=database_url)
    async with client_on(config) as client:
        await push_image(client, "team/app", "v1")
        await client.get("/v2/team/app/manifests/v1")
        async with database(client).read() as session:
            assert await outbox.pending(session) == 0
        assert not isinstance(client, httpx.AsyncClient) or await outbox_events(client) == []
