"""Sparse indexes: spec.md "Pushing Manifests" ("A registry MAY reject a manifest uploaded to the manifest endpoint
with descriptors in other fields that reference a manifest or blob that does not exist in the registry"), and
distribution 3's ``validation.manifests.indexes.platforms`` (all, none, list with platformlist) saying which children
an index needs pushed first; the conformance suite's "Sparse Manifests" index (one child pushed, one never)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from registry.config import Config, ConfigError
from registry.content.validation import IndexValidation
from registry.db.engine import Database
from registry.db.models import manifest_references, manifests
from tests.api_helpers import (
    OCI_INDEX,
    api_config,
    assert_error,
    client_on,
    digest_of,
    encode,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
)

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}
PLATFORMS = "REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMS"


def _config(tmp_path: Path, database_url: str, platforms: str | None, **env: str) -> Config:
    extra = {PLATFORMS: platforms} if platforms is not None else {}
    return api_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=database_url, **extra, **env)


async def _sparse_index(client: httpx.AsyncClient) -> tuple[bytes, bytes, bytes]:
    """An index of an amd64 image that is pushed and an arm64 image that is not: (index, amd64, arm64) bytes."""
    amd64, _ = await push_image(client, "app", "amd64-only", seed="amd64")
    arm64 = image_manifest(b"config arm64", [b"layer arm64"])
    return index_manifest([(amd64, AMD64), (arm64, ARM64)]), amd64, arm64


async def _parents(database_url: str, child: bytes) -> list[str]:
    database = Database(database_url)
    try:
        async with database.read() as session:
            child_id = select(manifests.c.id).where(manifests.c.digest == digest_of(child)).scalar_subquery()
            parent = manifests.alias()
            query = select(parent.c.digest).join(manifest_references, manifest_references.c.parent_id == parent.c.id)
            return list((await session.scalars(query.where(manifest_references.c.child_id == child_id))).all())
    finally:
        await database.dispose()


async def test_pushing_manifests_an_index_missing_a_child_is_refused_by_default(
    tmp_path: Path, database_url: str
) -> None:
    async with client_on(_config(tmp_path, database_url, None)) as client:
        index, _, arm64 = await _sparse_index(client)
        response = await put_manifest(client, "app", "multi", index, OCI_INDEX)
        error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
        assert error["detail"] == {"digest": digest_of(arm64)}


async def test_pushing_manifests_sparse_index_with_platforms_none(tmp_path: Path, database_url: str) -> None:
    async with client_on(_config(tmp_path, database_url, "none")) as client:
        index, amd64, arm64 = await _sparse_index(client)
        response = await put_manifest(client, "app", "multi", index, OCI_INDEX)
        assert response.status_code == 201, response.text
        fetched = await client.get("/v2/app/manifests/multi", headers={"Accept": OCI_INDEX})
        assert (fetched.status_code, fetched.content) == (200, index)
        assert (await client.head(f"/v2/app/manifests/{digest_of(index)}")).status_code == 200
        assert_error(await client.get(f"/v2/app/manifests/{digest_of(arm64)}"), 404, "MANIFEST_UNKNOWN")
        assert await _parents(database_url, amd64) == [digest_of(index)]
        # the missing child pushed later, untagged: the index now holds it, so the collector keeps it
        await push_blob(client, "app", b"config arm64")
        await push_blob(client, "app", b"layer arm64")
        assert (await put_manifest(client, "app", digest_of(arm64), arm64)).status_code == 201
        assert (await client.get(f"/v2/app/manifests/{digest_of(arm64)}")).content == arm64
    assert await _parents(database_url, arm64) == [digest_of(index)]


async def test_pushing_manifests_a_referrer_of_a_late_child_is_not_its_parent(
    tmp_path: Path, database_url: str
) -> None:
    url = database_url
    async with client_on(_config(tmp_path, url, "none")) as client:
        index, _, arm64 = await _sparse_index(client)
        assert (await put_manifest(client, "app", "multi", index, OCI_INDEX)).status_code == 201
        subject = {"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)}
        referrer = encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "subject": subject})
        assert (await put_manifest(client, "app", digest_of(referrer), referrer, OCI_INDEX)).status_code == 201
        await push_blob(client, "app", b"config arm64")
        await push_blob(client, "app", b"layer arm64")
        assert (await put_manifest(client, "app", digest_of(arm64), arm64)).status_code == 201
    assert await _parents(url, arm64) == [digest_of(index)]
    assert await _parents(url, index) == []


async def test_pushing_manifests_image_blobs_stay_required_with_platforms_none(
    tmp_path: Path, database_url: str
) -> None:
    async with client_on(_config(tmp_path, database_url, "none")) as client:
        await push_blob(client, "app", b"config")
        response = await put_manifest(client, "app", "v1", image_manifest(b"config", [b"never pushed"]))
        assert assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")["detail"] == {"digest": digest_of(b"never pushed")}


@pytest.mark.parametrize(("listed", "status"), [("amd64", 201), ("arm64", 400)])
async def test_pushing_manifests_platforms_list_requires_listed_children(
    tmp_path: Path, database_url: str, listed: str, status: int
) -> None:
    # only the children whose platform is listed must be there: arm64's is missing
    env = {
        "REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMLIST": f"[{{architecture: {listed}, os: linux}}]",
    }
    config = _config(tmp_path, database_url, "list", **env)
    async with client_on(config) as client:
        index, _, _ = await _sparse_index(client)
        response = await put_manifest(client, "app", "multi", index, OCI_INDEX)
        assert response.status_code == status, response.text


def test_validation_keys_read_and_checked(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db"
    assert IndexValidation.from_config(_config(tmp_path, url, None)) == IndexValidation("all")
    assert IndexValidation.from_config(_config(tmp_path, url, "None")) == IndexValidation("none")
    with pytest.raises(ConfigError, match="platformlist"):
        IndexValidation.from_config(_config(tmp_path, url, "list"))
    with pytest.raises(ConfigError, match="platforms"):
        IndexValidation.from_config(_config(tmp_path, url, "some"))
