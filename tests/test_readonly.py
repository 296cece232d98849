"""storage.maintenance.readonly.enabled: pulls keep working, every write is 405 UNSUPPORTED and nothing changes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api_helpers import digest_of
from tests.conftest import make_config, started_client

BLOB = b"read-only blob"
DIGEST = digest_of(BLOB)
WRITES = [
    ("POST", "/v2/ro/repo/blobs/uploads/"),
    ("POST", f"/v2/ro/repo/blobs/uploads/?digest={DIGEST}"),
    ("PATCH", "/v2/ro/repo/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("PUT", f"/v2/ro/repo/blobs/uploads/00000000-0000-0000-0000-000000000000?digest={DIGEST}"),
    ("DELETE", "/v2/ro/repo/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("PUT", "/v2/ro/repo/manifests/latest"),
    ("DELETE", f"/v2/ro/repo/manifests/{DIGEST}"),
    ("DELETE", f"/v2/ro/repo/blobs/{DIGEST}"),
]


async def _push_blob(tmp_path: Path, database_url: str) -> None:
    async with started_client(make_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)) as client:
        response = await client.post(f"/v2/ro/repo/blobs/uploads/?digest={DIGEST}", content=BLOB)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_read_only_refuses_every_write_and_still_serves_reads(
    tmp_path: Path, database_url: str, method: str, path: str
) -> None:
    await _push_blob(tmp_path, database_url)
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED": "true"}
    config = make_config(tmp_path, "filesystem", **env)
    async with started_client(config) as client:
        response = await client.request(method, path, content=BLOB)
        assert response.status_code == 405, response.text
        assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert response.headers["docker-distribution-api-version"] == "registry/2.0"
        blob = await client.get(f"/v2/ro/repo/blobs/{DIGEST}")
        assert (blob.status_code, blob.content) == (200, BLOB)
        catalog = await client.get("/v2/_catalog")
        assert catalog.json() == {"repositories": ["ro/repo"]}


async def test_writable_registry_accepts_the_same_writes(tmp_path: Path) -> None:
    async with started_client(make_config(tmp_path, "filesystem")) as client:
        response: httpx.Response = await client.post("/v2/ro/repo/blobs/uploads/")
        assert response.status_code == 202
