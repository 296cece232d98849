"""The online collector over SQL references (issue: online garbage collection): deletes free space on every backend
and database, shared layers survive while an image uses them, an index keeps its children, referrers follow their
subject; and the races, each with a pause at its dangerous point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from registry.config import Config
from registry.db import gc_last_run
from registry.db.gc_last_run import LastRun
from registry.db.models import blobs
from registry.db.sessions import Writer
from registry.gc.collector import Collector, Report
from registry.handlers.base import Services
from tests.api_helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    app_of,
    client_on,
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
    push_blob,
    put_manifest,
)
from tests.conftest import make_config

NOW = {"REGISTRY_STORAGE_GC_DELAY": "0s", "REGISTRY_STORAGE_GC_LEASE": "0s", "REGISTRY_STORAGE_GC_ENABLED": "false"}
UNTAGGED = {**NOW, "REGISTRY_STORAGE_GC_UNTAGGED": "0s"}
LEASED = {**NOW, "REGISTRY_STORAGE_GC_LEASE": "1h"}


def with_env(config: Config, tmp_path: Path, **env: str) -> Config:
    """The fixture's config (backend and database) with the collector's keys set."""
    if config.storage.driver == "s3":
        s3 = {f"REGISTRY_STORAGE_S3_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in config.storage.params.items()}  # fmt: skip
        env = {**env, "REGISTRY_STORAGE_REDIRECT_DISABLE": "true"}
        return make_config(tmp_path, "s3", REGISTRY_DATABASE_URL=config.database_url, **s3, **env)
    return make_config(tmp_path, config.storage.driver, REGISTRY_DATABASE_URL=config.database_url, **env)


@pytest.fixture
async def gc_client(config: Config, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    env = getattr(request, "param", NOW)
    async with client_on(with_env(config, tmp_path, **env)) as client:
        yield client


def collector(client: httpx.AsyncClient) -> Collector:
    found: Collector = app_of(client).state.collector
    return found


def services(client: httpx.AsyncClient) -> Services:
    found: Services = app_of(client).state.services
    return found


async def stored_bytes(client: httpx.AsyncClient) -> set[str]:
    """The digests whose bytes are in storage, whatever the backend."""
    backend = services(client).backend
    try:
        found = await backend.list("docker/registry/v2/blobs/sha256")
    except Exception:  # noqa: BLE001 - nothing stored yet
        return set()
    digests = set()
    for prefix in found:
        for path in await backend.list(prefix):
            digests.add("sha256:" + path.rsplit("/", 1)[-1])
    return digests


async def expire_leases(client: httpx.AsyncClient) -> None:
    """As if an hour had passed since every upload so far."""
    await services(client).db.write(lambda s: s.execute(update(blobs).values(protected_until=None)))


async def push_image(client: httpx.AsyncClient, repo: str, tag: str | None, layers: list[bytes], seed: str) -> str:
    config = f'{{"seed": "{seed}"}}'.encode()
    for blob in (config, *layers):
        await push_blob(client, repo, blob)
    body = image_manifest(config, layers)
    response = await put_manifest(client, repo, tag or digest_of(body), body, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return digest_of(body)


async def delete(client: httpx.AsyncClient, repo: str, reference: str) -> None:
    assert (await client.delete(f"/v2/{repo}/manifests/{reference}")).status_code == 202


async def pull_ok(client: httpx.AsyncClient, repo: str, digest: str) -> bool:
    return (await client.get(f"/v2/{repo}/blobs/{digest}")).status_code == 200


async def test_a_deleted_image_frees_its_bytes_and_a_shared_layer_survives(gc_client: httpx.AsyncClient) -> None:
    shared, own_a, own_b = b"shared layer" * 100, b"layer only in a" * 100, b"layer only in b" * 100
    a = await push_image(gc_client, "team/app", "a", [shared, own_a], "a")
    b = await push_image(gc_client, "team/app", "b", [shared, own_b], "b")
    before = await stored_bytes(gc_client)
    assert {digest_of(shared), digest_of(own_a), digest_of(own_b)} <= before

    await delete(gc_client, "team/app", a)
    report = await collector(gc_client).run_once()

    gone = before - await stored_bytes(gc_client)
    assert gone == {digest_of(own_a), digest_of(b'{"seed": "a"}')}
    assert report.bytes_freed == len(own_a) + len(b'{"seed": "a"}')
    for layer in (shared, own_b):
        assert await pull_ok(gc_client, "team/app", digest_of(layer))
    assert (await gc_client.get(f"/v2/team/app/manifests/{b}")).status_code == 200
    assert (await collector(gc_client).run_once()).reviews == 0, "nothing is left to review"


async def test_a_run_whose_record_fails_still_collects_and_says_so(
    gc_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(session: Writer, run: LastRun) -> None:
        raise RuntimeError("no room")

    await push_blob(gc_client, "team/app", b"orphan")
    monkeypatch.setattr(gc_last_run, "record", broken)
    report = await collector(gc_client).run_once()
    assert report.blobs == [(digest_of(b"orphan"), len(b"orphan"))]
    assert "its run could not be recorded for the UI" in caplog.text and "no room" in caplog.text
    async with services(gc_client).db.read() as session:
        assert await gc_last_run.latest(session) is None


async def test_a_blob_uploaded_and_never_named_goes_after_the_delay(gc_client: httpx.AsyncClient) -> None:
    await push_blob(gc_client, "team/app", b"orphan")
    await collector(gc_client).run_once()
    assert digest_of(b"orphan") not in await stored_bytes(gc_client)
    assert not await pull_ok(gc_client, "team/app", digest_of(b"orphan"))


@pytest.mark.parametrize("gc_client", [{**NOW, "REGISTRY_STORAGE_GC_DELAY": "1h"}], indirect=True)
async def test_nothing_goes_before_the_delay(gc_client: httpx.AsyncClient) -> None:
    await push_blob(gc_client, "team/app", b"orphan")
    digest = await push_image(gc_client, "team/app", "v1", [b"layer"], "x")
    await delete(gc_client, "team/app", digest)
    report = await collector(gc_client).run_once()
    assert report.blobs == [] and report.links_removed == 0
    assert digest_of(b"orphan") in await stored_bytes(gc_client)


@pytest.mark.parametrize("gc_client", [{**NOW, "REGISTRY_STORAGE_GC_LEASE": "1h"}], indirect=True)
async def test_a_leased_blob_is_kept_and_reviewed_when_its_lease_ends(gc_client: httpx.AsyncClient) -> None:
    await push_blob(gc_client, "team/app", b"just uploaded")
    assert (await collector(gc_client).run_once()).blobs == []
    assert await pull_ok(gc_client, "team/app", digest_of(b"just uploaded"))


@pytest.mark.parametrize("gc_client", [UNTAGGED], indirect=True)
async def test_untagged_manifests_go_when_configured_and_an_index_keeps_its_children(
    gc_client: httpx.AsyncClient,
) -> None:
    child = await push_image(gc_client, "multi/app", None, [b"amd64 layer"], "amd64")
    loose = await push_image(gc_client, "multi/app", None, [b"loose layer"], "loose")
    child_body = (await gc_client.get(f"/v2/multi/app/manifests/{child}")).content
    index = index_manifest([(child_body, {"os": "linux", "architecture": "amd64"})])
    assert (await put_manifest(gc_client, "multi/app", "v1", index, OCI_INDEX)).status_code == 201
    tagged = await push_image(gc_client, "multi/app", "v2", [b"v2 layer"], "v2")
    report = await collector(gc_client).run_once()

    assert report.manifests == [("multi/app", loose)]
    for kept in (child, tagged, digest_of(index)):
        assert (await gc_client.get(f"/v2/multi/app/manifests/{kept}")).status_code == 200
    assert digest_of(b"loose layer") not in await stored_bytes(gc_client)

    await delete(gc_client, "multi/app", "v1")  # the tag: the index is untagged, then its child once it is gone
    report = await collector(gc_client).run_once()
    assert sorted(report.manifests) == sorted([("multi/app", digest_of(index)), ("multi/app", child)])
    assert digest_of(b"amd64 layer") not in await stored_bytes(gc_client)


@pytest.mark.parametrize("gc_client", [UNTAGGED], indirect=True)
async def test_referrers_follow_their_subject(gc_client: httpx.AsyncClient) -> None:
    subject = await push_image(gc_client, "signed/app", "v1", [b"signed layer"], "s")
    subject_body = (await gc_client.get(f"/v2/signed/app/manifests/{subject}")).content
    signature = b'{"sig": 1}'
    await push_blob(gc_client, "signed/app", signature)
    referrer = image_manifest(
        b"{}", [signature], artifactType="application/example.sig",
        subject=descriptor(OCI_MANIFEST, subject_body),
    )  # fmt: skip
    assert (await put_manifest(gc_client, "signed/app", digest_of(referrer), referrer, OCI_MANIFEST)).status_code == 201
    assert (await collector(gc_client).run_once()).manifests == [], "an untagged referrer of a kept subject stays"

    await delete(gc_client, "signed/app", "v1")
    report = await collector(gc_client).run_once()
    assert sorted(report.manifests) == sorted([("signed/app", subject), ("signed/app", digest_of(referrer))])
    assert digest_of(signature) not in await stored_bytes(gc_client)


async def test_a_dry_run_changes_nothing(gc_client: httpx.AsyncClient) -> None:
    digest = await push_image(gc_client, "team/app", "v1", [b"layer"], "x")
    await delete(gc_client, "team/app", digest)
    before = await stored_bytes(gc_client)
    planned = await collector(gc_client).run_once(dry_run=True)
    assert {d for d, _ in planned.blobs} == {digest_of(b"layer"), digest_of(b'{"seed": "x"}')}
    assert await stored_bytes(gc_client) == before
    assert {d for d, _ in (await collector(gc_client).run_once()).blobs} == {d for d, _ in planned.blobs}


# ---- the races: a pause at the dangerous point, the other side runs, then the collector goes on -------------------


def pausing_at(point: str) -> tuple[asyncio.Event, asyncio.Event, object]:
    """(reached, resume, pause function): the collector stops at ``point`` until ``resume`` is set."""
    reached, resume = asyncio.Event(), asyncio.Event()

    async def pause(at: str) -> None:
        if at == point:
            reached.set()
            await resume.wait()

    return reached, resume, pause


async def run_paused(
    client: httpx.AsyncClient, point: str
) -> tuple[asyncio.Event, asyncio.Event, asyncio.Task[Report]]:
    reached, resume, pause = pausing_at(point)
    collector(client).pause = pause  # type: ignore[assignment]
    task = asyncio.create_task(collector(client).run_once())
    await asyncio.wait_for(reached.wait(), 10)
    return reached, resume, task


@pytest.mark.parametrize("gc_client", [LEASED], indirect=True)
async def test_race_a_manifest_pushed_after_the_mark_names_a_blob_being_deleted(gc_client: httpx.AsyncClient) -> None:
    """The collector decided and committed (row gone, tombstone up); a manifest naming the blob is refused, since the
    link went in the same transaction; the blob re-uploaded waits for the bytes' deletion and is whole after."""
    config, layer = b'{"seed": "late"}', b"late layer"
    await push_blob(gc_client, "team/app", config)
    await push_blob(gc_client, "team/app", layer)
    await expire_leases(gc_client)
    _, resume, task = await run_paused(gc_client, "blob:row-deleted")

    body = image_manifest(config, [layer])
    refused = await put_manifest(gc_client, "team/app", "v1", body, OCI_MANIFEST)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    reupload = asyncio.create_task(push_blob(gc_client, "team/app", layer))
    await asyncio.sleep(0.2)
    assert not reupload.done(), "the upload waits for the deletion under way"
    resume.set()
    await task
    await reupload
    await push_blob(gc_client, "team/app", config)
    assert (await put_manifest(gc_client, "team/app", "v1", body, OCI_MANIFEST)).status_code == 201
    assert (await gc_client.get(f"/v2/team/app/blobs/{digest_of(layer)}")).content == layer


@pytest.mark.parametrize("gc_client", [UNTAGGED], indirect=True)
async def test_race_a_tag_moved_back_while_its_old_manifest_is_reviewed(gc_client: httpx.AsyncClient) -> None:
    first = await push_image(gc_client, "team/app", "latest", [b"first"], "1")
    await push_image(gc_client, "team/app", "latest", [b"second"], "2")  # queues the first for review
    _, resume, task = await run_paused(gc_client, "manifest:claimed")
    body = (await gc_client.get(f"/v2/team/app/manifests/{first}")).content
    assert (await put_manifest(gc_client, "team/app", "latest", body, OCI_MANIFEST)).status_code == 201
    resume.set()
    report = await task
    assert ("team/app", first) not in report.manifests
    assert (await gc_client.get("/v2/team/app/manifests/latest")).headers["docker-content-digest"] == first
    assert await pull_ok(gc_client, "team/app", digest_of(b"first"))


@pytest.mark.parametrize("gc_client", [LEASED], indirect=True)
async def test_race_a_mount_from_a_repository_whose_last_link_is_collected(gc_client: httpx.AsyncClient) -> None:
    """Claimed but not yet decided: the mount renews the lease and links, so the collector keeps the blob."""
    await push_blob(gc_client, "source/app", b"mounted")
    await expire_leases(gc_client)
    _, resume, task = await run_paused(gc_client, "blob:claimed")
    mount = await gc_client.post(
        "/v2/target/app/blobs/uploads/", params={"mount": digest_of(b"mounted"), "from": "source/app"}
    )
    assert mount.status_code == 201
    resume.set()
    report = await task
    assert digest_of(b"mounted") not in {d for d, _ in report.blobs}
    assert await pull_ok(gc_client, "target/app", digest_of(b"mounted"))
