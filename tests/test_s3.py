"""The registry on S3 (a moto server): redirects, uploads as multipart uploads that outlive the process, cleanup.

The whole API suite also runs on S3 through the ``config`` fixture; these tests cover what only S3 does.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from registry.config import Config
from tests.api_helpers import (
    app_of,
    assert_created,
    blob_status,
    client_on,
    digest_of,
    finish_upload,
    patch_chunk,
    push_blob,
    start_upload,
    upload_end,
)
from tests.conftest import s3_config
from tests.s3server import MotoServer, fetch

MIB = 1024 * 1024
BIG = hashlib.sha256(b"seed").digest() * (11 * MIB // 32 + 7)  # 11 MiB and a bit: two 5 MiB parts and a tail


def config_on(tmp_path: Path, moto: MotoServer, redirect: bool = False) -> Config:
    disable = "false" if redirect else "true"
    return s3_config(
        tmp_path, moto, REGISTRY_STORAGE_S3_CHUNKSIZE=str(5 * MIB), REGISTRY_STORAGE_REDIRECT_DISABLE=disable
    )


def bucket_of(config: Config) -> str:
    return str(config.storage.params["bucket"])


def multipart_uploads(moto: MotoServer, config: Config) -> list[str]:
    return [u["Key"] for u in moto.client().list_multipart_uploads(Bucket=bucket_of(config)).get("Uploads", [])]


async def test_blob_get_redirects_to_a_presigned_url_and_head_is_answered_here(
    tmp_path: Path, moto_s3: MotoServer
) -> None:
    async with client_on(config_on(tmp_path, moto_s3, redirect=True)) as client:
        digest = await push_blob(client, "s3/redirect", b"redirected bytes")
        head = await client.head(f"/v2/s3/redirect/blobs/{digest}")
        assert (head.status_code, head.headers["content-length"]) == (200, "16")
        response = await client.get(f"/v2/s3/redirect/blobs/{digest}")
        assert response.status_code == 307
        assert response.headers["docker-content-digest"] == digest
        location = response.headers["location"]
        assert location.startswith(moto_s3.endpoint) and "Signature" in location
    fetched = await fetch(location)
    assert fetched.status_code == 200 and digest_of(fetched.content) == digest
    ranged = await fetch(location, headers={"Range": "bytes=4-9"})
    assert (ranged.status_code, ranged.content) == (206, b"rected")


async def test_redirect_disable_streams_through_the_registry(tmp_path: Path, moto_s3: MotoServer) -> None:
    async with client_on(config_on(tmp_path, moto_s3)) as client:
        digest = await push_blob(client, "s3/stream", BIG)
        response = await client.get(f"/v2/s3/stream/blobs/{digest}")
        assert response.status_code == 200 and digest_of(response.content) == digest


async def test_a_streamed_patch_becomes_a_multipart_upload_that_another_process_finishes(
    tmp_path: Path, moto_s3: MotoServer
) -> None:
    config = config_on(tmp_path, moto_s3)
    async with client_on(config) as client:
        location = await start_upload(client, "s3/multipart")
        assert (await patch_chunk(client, location, BIG, 0)).status_code == 202
    assert len(multipart_uploads(moto_s3, config)) == 1, "11 MiB at 5 MiB parts must be a multipart upload"

    async with client_on(config) as client:  # a new process: same database and bucket, no state in memory
        assert await upload_end(client, location) == f"0-{len(BIG) - 1}"
        await assert_created(client, await finish_upload(client, location, digest_of(BIG)), "s3/multipart", BIG)
    assert multipart_uploads(moto_s3, config) == []
    assert moto_s3.leftovers(bucket_of(config)) == [f"registry/docker/registry/v2/blobs/{_blob_key(BIG)}"]


async def test_small_chunked_patches_are_buffered_into_parts_across_requests(
    tmp_path: Path, moto_s3: MotoServer
) -> None:
    config, step = config_on(tmp_path, moto_s3), 3 * MIB + 1  # chunks smaller than a part, split across parts
    async with client_on(config) as client:
        location = await start_upload(client, "s3/chunks")
        for start in range(0, len(BIG), step):
            assert (await patch_chunk(client, location, BIG[start : start + step], start)).status_code == 202
        await assert_created(client, await finish_upload(client, location, digest_of(BIG)), "s3/chunks", BIG)
    assert multipart_uploads(moto_s3, config) == []


async def test_a_cancelled_upload_leaves_no_multipart_upload_behind(tmp_path: Path, moto_s3: MotoServer) -> None:
    config = config_on(tmp_path, moto_s3)
    async with client_on(config) as client:
        location = await start_upload(client, "s3/cancel")
        assert (await patch_chunk(client, location, BIG, 0)).status_code == 202
        assert multipart_uploads(moto_s3, config) != []
        assert (await client.delete(location)).status_code == 204
        assert await blob_status(client, "s3/cancel", digest_of(BIG)) == 404
    assert moto_s3.leftovers(bucket_of(config)) == []


async def test_purging_stale_sessions_aborts_their_multipart_uploads(tmp_path: Path, moto_s3: MotoServer) -> None:
    config = config_on(tmp_path, moto_s3)
    async with client_on(config) as client:
        location = await start_upload(client, "s3/abandoned")
        assert (await patch_chunk(client, location, BIG, 0)).status_code == 202
        uploads = app_of(client).state.services.uploads
        assert len(await uploads.purge(datetime.now(UTC) + timedelta(seconds=1))) == 1
    assert moto_s3.leftovers(bucket_of(config)) == []


def _blob_key(data: bytes) -> str:
    hexdigest = hashlib.sha256(data).hexdigest()
    return f"sha256/{hexdigest[:2]}/{hexdigest}/data"
