"""``/v2/`` and ``/v2/<name>/blobs/<digest>``: version check, fetch with Range, visibility per repository, delete.

spec.md "Determining Support" (end-1), "Pulling blobs" / "Checking if content exists" (end-2),
"Range request support" (RFC 9110), "Deleting Blobs" (end-10), "Error Codes".
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from registry.content.paths import blob_path
from registry.digests import Digest
from tests.api_helpers import (
    API_VERSION,
    API_VERSION_HEADER,
    DRIVERS,
    OCTET,
    UNKNOWN_DIGEST,
    app_of,
    assert_error,
    blob_status,
    client_for,
    digest_of,
    has_api_version,
    push_blob,
)

DATA = bytes(range(20)) + b"twenty more bytes..."  # 40 bytes
SIZE = len(DATA)


async def test_api_version_check(client: httpx.AsyncClient) -> None:
    # "Determining Support": GET /v2/ -> 200 OK
    response = await client.get("/v2/")
    assert response.status_code == 200
    assert has_api_version(response)
    assert response.json() == {}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/", 200),
        ("HEAD", "/v2/", 200),
        ("POST", "/v2/repo/blobs/uploads/", 202),
        ("GET", "/v2/_catalog", 200),
        pytest.param("GET", "/nowhere", 404),
        pytest.param("GET", f"/v2/repo/blobs/{UNKNOWN_DIGEST}", 404),
        pytest.param("HEAD", f"/v2/repo/blobs/{UNKNOWN_DIGEST}", 404),
        pytest.param("GET", "/v2/repo/blobs/not-a-digest", 400),
        pytest.param("POST", "/v2/repo/manifests/latest", 405),
    ],
)
async def test_api_version_header_on_every_response(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    # "Legacy Docker support HTTP headers": one Docker-Distribution-API-Version: registry/2.0 on every response
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers.get_list(API_VERSION_HEADER) == [API_VERSION]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/v2/repo/unknown-endpoint", 404),
        ("POST", "/v2/repo/manifests/latest", 405),
        ("PATCH", "/v2/", 405),
        ("DELETE", "/v2/_catalog", 405),
        ("PUT", "/v2/repo/blobs/uploads/", 405),
    ],
)
async def test_unknown_route_or_method(client: httpx.AsyncClient, method: str, path: str, status: int) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert has_api_version(response)
    if status == 405:
        assert response.headers["Allow"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_fetch_blob_headers(client: httpx.AsyncClient, method: str) -> None:
    # "Pulling blobs": 200 and a Docker-Content-Digest matching the body; HEAD: Content-Length, no body
    digest = await push_blob(client, "blobs/get", DATA)
    response = await client.request(method, f"/v2/blobs/get/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Content-Type"] == OCTET
    assert has_api_version(response)
    assert response.content == (DATA if method == "GET" else b"")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=-5", SIZE - 5, SIZE - 1),
        ("bytes=10-", 10, SIZE - 1),
        ("bytes=30-1000", 30, SIZE - 1),
        ("bytes=-1000", 0, SIZE - 1),
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
    ],
)
async def test_range_request(client: httpx.AsyncClient, header: str, start: int, end: int) -> None:
    # "Range request support": RFC 9110 section 14 -> 206 Partial Content with Content-Range
    digest = await push_blob(client, "blobs/range", DATA)
    response = await client.get(f"/v2/blobs/range/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.content == DATA[start : end + 1]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", "bytes=100-200", "bytes=-0"])
async def test_range_not_satisfiable(client: httpx.AsyncClient, header: str) -> None:
    # RFC 9110 15.5.17: 416 with "Content-Range: bytes */<complete-length>"
    digest = await push_blob(client, "blobs/range", DATA)
    response = await client.get(f"/v2/blobs/range/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert has_api_version(response)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_unknown_blob(client: httpx.AsyncClient, method: str) -> None:
    # "Pulling blobs": "If the blob is not found in the registry, the response code MUST be 404 Not Found"
    await push_blob(client, "blobs/known", b"something else")
    response = await client.request(method, f"/v2/blobs/known/blobs/{UNKNOWN_DIGEST}")
    assert_error(response, 404, "BLOB_UNKNOWN")


async def test_blob_is_visible_only_where_linked(client: httpx.AsyncClient) -> None:
    # access "gated by the name of the repository": another repository sees the blob only once mounted (end-11)
    digest = await push_blob(client, "team/source", DATA)
    await push_blob(client, "team/other", b"the other repository exists")
    assert_error(await client.get(f"/v2/team/other/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert await blob_status(client, "team/never-created", digest) == 404
    mount = await client.post("/v2/team/other/blobs/uploads/", params={"mount": digest, "from": "team/source"})
    assert mount.status_code == 201
    response = await client.get(f"/v2/team/other/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA


async def test_delete_blob(client: httpx.AsyncClient) -> None:
    # "Deleting Blobs": 202 Accepted; afterwards (and for a blob never there) 404 Not Found
    digest = await push_blob(client, "del/a", DATA)
    await push_blob(client, "del/b", DATA)
    response = await client.delete(f"/v2/del/a/blobs/{digest}")
    assert response.status_code == 202
    assert has_api_version(response)
    assert_error(await client.get(f"/v2/del/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.delete(f"/v2/del/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert await blob_status(client, "del/b", digest) == 200  # only that repository's link went
    assert_error(await client.delete(f"/v2/del/unknown/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_small_blobs_are_served_from_memory_while_linked(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "mem/a", DATA)
    await push_blob(client, "mem/b", DATA)
    assert (await client.get(f"/v2/mem/a/blobs/{digest}")).content == DATA
    backend = app_of(client).state.services.backend
    await backend.delete(blob_path(Digest.parse(digest)))  # storage is not asked again
    response = await client.get(f"/v2/mem/b/blobs/{digest}")
    assert (response.status_code, response.content) == (200, DATA)
    assert (await client.delete(f"/v2/mem/a/blobs/{digest}")).status_code == 202
    assert_error(await client.get(f"/v2/mem/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")  # the link is asked every time


@pytest.mark.parametrize("driver", DRIVERS)
async def test_delete_blob_disabled(tmp_path: Path, driver: str) -> None:
    # "Deleting Blobs": "If blob deletion is disabled, the registry MUST respond with either a 400 ... or a 405"
    async with client_for(tmp_path, driver, REGISTRY_STORAGE_DELETE_ENABLED="false") as client:
        digest = await push_blob(client, "nodelete", DATA)
        assert_error(await client.delete(f"/v2/nodelete/blobs/{digest}"), 405, "UNSUPPORTED")
        assert await blob_status(client, "nodelete", digest) == 200


BAD_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:",
    "nodigest",
    "md5:" + "a" * 32,
    "sha1:" + "a" * 40,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
async def test_invalid_digest(client: httpx.AsyncClient, method: str, digest: str) -> None:
    # "Error Codes": DIGEST_INVALID for a malformed digest or an unsupported algorithm
    await push_blob(client, "digests", DATA)
    assert_error(await client.request(method, f"/v2/digests/blobs/{digest}"), 400, "DIGEST_INVALID")


async def test_digest_of_served_blob_matches_body(client: httpx.AsyncClient) -> None:
    # "Pulling blobs": Docker-Content-Digest "MUST match the digest of the returned blob", also for an empty blob
    digest = await push_blob(client, "empty", b"")
    response = await client.get(f"/v2/empty/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == b""
    assert digest_of(response.content) == response.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [("GET", {}, 200), ("HEAD", {}, 200), ("GET", {"Range": "bytes=2-5"}, 206), ("HEAD", {"Range": "bytes=2-5"}, 200)],
)
async def test_pulling_blobs_docker_content_digest_on_every_get_and_head(
    client: httpx.AsyncClient, method: str, headers: dict[str, str], status: int
) -> None:
    # spec main "Pulling blobs" / "Checking if content exists": a successful response MUST contain Docker-Content-Digest
    data = b"digest header" * 30_000  # past SMALL_BLOB: the streamed path too
    for blob in (data, b"small"):
        digest = await push_blob(client, "dcd", blob)
        response = await client.request(method, f"/v2/dcd/blobs/{digest}", headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["Docker-Content-Digest"] == digest
