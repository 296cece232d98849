"""``/v2/<name>/blobs/uploads/``: monolithic, streamed and chunked pushes, status, cancel, mount, concurrency.

spec.md "Pushing a blob monolithically" (end-4a, end-4b, end-6), "Pushing a blob in chunks" (end-5, end-13),
"Cancel a blob upload" (end-14), "Mounting a blob from another repository" (end-11), "Use Cases: Layer Upload
De-duplication".
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from registry.config import Config
from registry.content import paths
from storage_backends import PathNotFound
from tests.api_helpers import (
    app_of,
    assert_created,
    assert_error,
    blob_files,
    blob_status,
    digest_of,
    filesystem_root,
    finish_upload,
    patch_chunk,
    path_of,
    push_blob,
    start_upload,
    upload_end,
)

DATA = b"0123456789abcdefghij"  # 20 bytes
DIGEST = digest_of(DATA)
UPLOAD_PATH = re.compile(r"/v2/up/load/blobs/uploads/([0-9a-f-]{36})")


async def test_start_upload(client: httpx.AsyncClient) -> None:
    # end-4a: 202 Accepted with a Location holding a unique session id
    response = await client.post("/v2/up/load/blobs/uploads/", headers={"Content-Length": "0"})
    assert response.status_code == 202
    match = UPLOAD_PATH.fullmatch(path_of(response.headers["Location"]))
    assert match is not None, response.headers["Location"]
    assert response.headers["Docker-Upload-UUID"] == match.group(1)
    assert response.headers["Range"] == "0-0"
    assert response.headers["Content-Length"] == "0"
    other = await start_upload(client, "up/load")
    assert other != path_of(response.headers["Location"])


async def upload_data_left(client: httpx.AsyncClient) -> list[str]:
    backend = app_of(client).state.services.backend
    try:
        return [info.path async for info in backend.walk(paths.uploads_root())]
    except PathNotFound:
        return []


async def test_single_post_monolithic(client: httpx.AsyncClient) -> None:
    # end-4b: POST ?digest= with the whole blob -> 201 Created, and no session or staged bytes left behind
    response = await client.post("/v2/up/load/blobs/uploads/", params={"digest": DIGEST}, content=DATA)
    await assert_created(client, response, "up/load", DATA)
    assert await upload_data_left(client) == []


async def test_single_post_cut_short_leaves_nothing(client: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield DATA[:10]
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await client.post("/v2/up/load/blobs/uploads/", params={"digest": DIGEST}, content=body())
    assert await upload_data_left(client) == []
    assert await blob_status(client, "up/load", DIGEST) == 404


async def test_post_then_put_with_body(client: httpx.AsyncClient) -> None:
    # "POST then PUT": PUT <location>?digest= with the blob as body -> 201 Created
    location = await start_upload(client, "up/load")
    await assert_created(client, await finish_upload(client, location, DIGEST, DATA), "up/load", DATA)


async def test_chunked_patches_then_empty_put(client: httpx.AsyncClient) -> None:
    # end-5: each chunk 202 with Location and "Range: 0-<end-of-range>" (spec main, "Pushing a blob in chunks": the
    # Content-Range end); end-6 closes with a zero-length PUT
    location = await start_upload(client, "up/load")
    for start, end in [(0, 6), (7, 13), (14, 19)]:
        response = await patch_chunk(client, location, DATA[start : end + 1], start)
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end}"
        assert path_of(response.headers["Location"]) == location
        location = path_of(response.headers["Location"])
    await assert_created(client, await finish_upload(client, location, DIGEST), "up/load", DATA)


async def test_final_chunk_in_put(client: httpx.AsyncClient) -> None:
    # "The final chunk MAY be uploaded using a PATCH request or it MAY be uploaded in the closing PUT request"
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:12], 0)).status_code == 202
    response = await client.put(
        location, params={"digest": DIGEST}, content=DATA[12:], headers={"Content-Range": f"12-{len(DATA) - 1}"}
    )
    await assert_created(client, response, "up/load", DATA)


async def test_streamed_patch_without_content_range(client: httpx.AsyncClient) -> None:
    # docker's push: one PATCH streaming the whole blob (chunked transfer encoding, no Content-Range), then PUT
    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(DATA), 3):
            yield DATA[i : i + 3]

    location = await start_upload(client, "up/load")
    response = await client.patch(location, content=body())
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{len(DATA) - 1}"
    await assert_created(
        client, await finish_upload(client, path_of(response.headers["Location"]), DIGEST), "up/load", DATA
    )


async def test_upload_status(client: httpx.AsyncClient) -> None:
    # end-13: 204 No Content, Location, "Range: 0-<end-of-range>" (no "bytes=" unit)
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:5], 0)).status_code == 202
    response = await client.get(location)
    assert response.status_code == 204
    assert response.headers["Range"] == "0-4"
    assert path_of(response.headers["Location"]) == location
    assert location.endswith(response.headers["Docker-Upload-UUID"])
    assert response.content == b""


@pytest.mark.parametrize(
    ("content_range", "out_of_order"),
    [
        pytest.param("8-11", True, id="gap"),
        pytest.param("3-6", True, id="overlap"),
        pytest.param("0-3", True, id="restart"),
        pytest.param("nonsense", False, id="invalid-format"),
        pytest.param("5-4", False, id="end-before-start"),
        pytest.param("5-9", False, id="length-mismatch"),
    ],
)
async def test_bad_chunk_range(client: httpx.AsyncClient, content_range: str, out_of_order: bool) -> None:
    # "If a chunk is uploaded out of order, the registry MUST respond with a 416"; a 416 does not fail the session
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:5], 0)).status_code == 202
    bad = await client.patch(location, content=DATA[5:9], headers={"Content-Range": content_range})
    assert bad.status_code == 416, bad.text
    if out_of_order:  # api.md: the 416 "will include a Range header indicating the current status"
        assert bad.headers["Range"] == "0-4"
    assert await upload_end(client, location) == "0-4"
    assert await blob_status(client, "up/load", DIGEST) == 404
    assert (await patch_chunk(client, location, DATA[5:], 5)).status_code == 202
    await assert_created(client, await finish_upload(client, location, DIGEST), "up/load", DATA)


async def test_first_chunk_out_of_order(client: httpx.AsyncClient) -> None:
    # "The first chunk's range MUST begin with 0"
    location = await start_upload(client, "up/load")
    response = await patch_chunk(client, location, DATA[5:], 5)
    assert response.status_code == 416
    assert response.headers["Range"] == "0-0"
    assert await upload_end(client, location) == "0-0"


async def test_put_with_wrong_content_range_start(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:10], 0)).status_code == 202
    response = await client.put(
        location, params={"digest": DIGEST}, content=DATA[12:], headers={"Content-Range": "12-19"}
    )
    assert response.status_code == 416
    assert await blob_status(client, "up/load", DIGEST) == 404


@pytest.mark.parametrize("single_post", [False, True])
async def test_digest_mismatch(client: httpx.AsyncClient, single_post: bool) -> None:
    # "Error Codes": DIGEST_INVALID; the content is not stored under either digest, and the session is over
    wrong = digest_of(b"something else")
    if single_post:
        response = await client.post("/v2/up/load/blobs/uploads/", params={"digest": wrong}, content=DATA)
    else:
        location = await start_upload(client, "up/load")
        assert (await patch_chunk(client, location, DATA, 0)).status_code == 202
        response = await finish_upload(client, location, wrong)
        assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(response, 400, "DIGEST_INVALID")
    assert await blob_status(client, "up/load", wrong) == 404
    assert await blob_status(client, "up/load", DIGEST) == 404
    mount = await client.post("/v2/elsewhere/blobs/uploads/", params={"mount": DIGEST})
    assert mount.status_code == 202  # not stored anywhere either


@pytest.mark.parametrize("digest", ["sha256:bad", digest_of(b"not the content")])
async def test_refused_single_post_leaves_nothing(client: httpx.AsyncClient, digest: str) -> None:
    # nothing becomes visible after a refused push: the repository is not listed (distribution lists a
    # repository once it has a layer link: registry/storage/catalog.go handleRepository)
    response = await client.post("/v2/refused/push/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert await blob_status(client, "refused/push", DIGEST) == 404
    assert (await client.get("/v2/_catalog")).json()["repositories"] == []
    assert await upload_data_left(client) == []


async def test_put_without_digest(client: httpx.AsyncClient) -> None:
    # end-6: "The closing PUT request MUST include the <digest> of the whole blob"
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA, 0)).status_code == 202
    assert_error(await client.put(location), 400, "DIGEST_INVALID")
    assert await blob_status(client, "up/load", DIGEST) == 404


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    # end-14: DELETE -> 204; the session id is then unknown (404)
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA, 0)).status_code == 202
    response = await client.delete(location)
    assert response.status_code == 204
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert await blob_status(client, "up/load", DIGEST) == 404


async def _unknown(client: httpx.AsyncClient) -> str:
    await start_upload(client, "up/load")
    return f"/v2/up/load/blobs/uploads/{uuid.uuid4()}"


async def _not_a_uuid(client: httpx.AsyncClient) -> str:
    await start_upload(client, "up/load")
    return "/v2/up/load/blobs/uploads/not-a-uuid"


async def _other_repository(client: httpx.AsyncClient) -> str:
    await start_upload(client, "up/load")
    location = await start_upload(client, "up/other")
    return location.replace("/v2/up/other/", "/v2/up/load/")


async def _finished(client: httpx.AsyncClient) -> str:
    location = await start_upload(client, "up/load")
    assert (await finish_upload(client, location, DIGEST, DATA)).status_code == 201
    return location


async def _cancelled(client: httpx.AsyncClient) -> str:
    location = await start_upload(client, "up/load")
    assert (await client.delete(location)).status_code == 204
    return location


SESSIONS: dict[str, Callable[[httpx.AsyncClient], Awaitable[str]]] = {
    "unknown": _unknown,
    "not-a-uuid": _not_a_uuid,
    "other-repository": _other_repository,
    "finished": _finished,
    "cancelled": _cancelled,
}


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("session", SESSIONS)
async def test_unknown_upload_session(client: httpx.AsyncClient, session: str, method: str) -> None:
    # "If the upload session_id is unknown to the registry, a 404 Not Found response will be returned"
    location = await SESSIONS[session](client)
    params = {"digest": digest_of(b"x")} if method == "PUT" else {}
    content = b"x" if method in ("PATCH", "PUT") else None
    response = await client.request(method, location, params=params, content=content)
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert await blob_status(client, "up/load", digest_of(b"x")) == 404
    if session == "other-repository":  # the owner's session is untouched
        assert await upload_end(client, location.replace("/v2/up/load/", "/v2/up/other/")) == "0-0"


@pytest.mark.parametrize("params", [{}, {"digest": "sha256:short"}], ids=["no-digest", "bad-digest"])
@pytest.mark.parametrize("session", ["unknown", "finished"])
async def test_unknown_upload_session_is_404_before_a_bad_digest(
    client: httpx.AsyncClient, session: str, params: dict[str, str]
) -> None:
    location = await SESSIONS[session](client)
    assert_error(await client.put(location, params=params), 404, "BLOB_UPLOAD_UNKNOWN")
    live = await start_upload(client, "up/load")
    assert_error(await client.put(live, params=params), 400, "DIGEST_INVALID")


async def test_mount_from_repository(client: httpx.AsyncClient) -> None:
    # end-11: 201 Created with the blob's Location (and Docker-Content-Digest)
    digest = await push_blob(client, "mount/source", DATA)
    response = await client.post("/v2/mount/target/blobs/uploads/", params={"mount": digest, "from": "mount/source"})
    await assert_created(client, response, "mount/target", DATA)


@pytest.mark.parametrize("source", ["mount/lacking", "mount/never-created", "Invalid-Name"])
async def test_mount_falls_back_to_upload(client: httpx.AsyncClient, source: str) -> None:
    # end-11: "if a registry ... is unable to mount the requested blob, it SHOULD return a 202"
    digest = await push_blob(client, "mount/holder", DATA)
    await push_blob(client, "mount/lacking", b"other content")
    response = await client.post("/v2/mount/target/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 202
    location = path_of(response.headers["Location"])
    assert location.startswith("/v2/mount/target/blobs/uploads/")
    assert await blob_status(client, "mount/target", digest) == 404
    await assert_created(client, await finish_upload(client, location, digest, DATA), "mount/target", DATA)


async def test_mount_with_malformed_digest_falls_back(client: httpx.AsyncClient) -> None:
    # api.md "Cross Repository Blob Mount": "If a mount fails due to invalid repository or digest arguments, the
    # registry will fall back to the standard upload behavior and return a 202 Accepted"
    await push_blob(client, "mount/source", DATA)
    params = {"mount": "sha256:bad", "from": "mount/source"}
    response = await client.post("/v2/mount/target/blobs/uploads/", params=params)
    assert response.status_code == 202, response.text
    assert path_of(response.headers["Location"]).startswith("/v2/mount/target/blobs/uploads/")


async def test_mount_without_from(client: httpx.AsyncClient) -> None:
    # "The registry MAY treat the from parameter as optional, and it MAY cross-mount the blob if it can be found"
    digest = await push_blob(client, "auto/source", DATA)
    response = await client.post("/v2/auto/target/blobs/uploads/", params={"mount": digest})
    await assert_created(client, response, "auto/target", DATA)
    missing = digest_of(b"stored nowhere")
    response = await client.post("/v2/auto/target/blobs/uploads/", params={"mount": missing})
    assert response.status_code == 202
    assert path_of(response.headers["Location"]).startswith("/v2/auto/target/blobs/uploads/")
    assert await blob_status(client, "auto/target", missing) == 404


async def test_same_blob_uploaded_twice_at_once(client: httpx.AsyncClient, config: Config) -> None:
    # "Layer Upload De-duplication": both uploads are accepted and the registry stores one copy
    data = DATA * 1000

    async def upload(name: str) -> httpx.Response:
        location = await start_upload(client, name)
        assert (await patch_chunk(client, location, data[:7000], 0)).status_code == 202
        return await finish_upload(client, location, digest_of(data), data[7000:])

    responses = await asyncio.gather(upload("dedup/a"), upload("dedup/a"), upload("dedup/b"))
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    for name in ("dedup/a", "dedup/b"):
        fetched = await client.get(f"/v2/{name}/blobs/{digest_of(data)}")
        assert fetched.status_code == 200
        assert fetched.content == data
    root = filesystem_root(config)
    if root is not None:
        assert blob_files(root, digest_of(data)) == ["data"]
        assert not list((root / "docker/registry/v2/uploads").glob("*/*"))


async def test_pushing_a_blob_in_chunks_416_says_where_to_continue(client: httpx.AsyncClient) -> None:
    # spec main "Pushing a blob in chunks": "If a chunk is uploaded out of order, the registry MUST respond with a 416";
    # the 416 carries the session's Range and Location, so the client continues without a GET first
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:5], 0)).status_code == 202
    bad = await patch_chunk(client, location, DATA[9:], 9)
    assert bad.status_code == 416, bad.text
    assert bad.headers["Range"] == "0-4"
    assert path_of(bad.headers["Location"]) == location
    assert (await patch_chunk(client, path_of(bad.headers["Location"]), DATA[5:], 5)).status_code == 202


async def test_pushing_a_blob_in_chunks_final_chunk_out_of_order_in_put_is_416(client: httpx.AsyncClient) -> None:
    # spec main: "If the final chunk is uploaded out of order, the registry MUST respond with a 416"
    location = await start_upload(client, "up/load")
    assert (await patch_chunk(client, location, DATA[:10], 0)).status_code == 202
    response = await client.put(
        location, params={"digest": DIGEST}, content=DATA[8:], headers={"Content-Range": "8-19"}
    )
    assert response.status_code == 416, response.text
    assert response.headers["Range"] == "0-9"
    assert path_of(response.headers["Location"]) == location
    assert await blob_status(client, "up/load", DIGEST) == 404
    await assert_created(client, await finish_upload(client, location, DIGEST, DATA[10:]), "up/load", DATA)


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    yield data  # no Content-Length: the server learns the body's length only by reading it


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_pushing_a_blob_in_chunks_end_of_range_matches_content_range(
    client: httpx.AsyncClient, method: str
) -> None:
    # spec main: "<end-of-range> ... is the position of the last uploaded byte of the blob, matching the end value of
    # the Content-Range in the request": a body that ends elsewhere is refused, and the Range says what arrived
    location = await start_upload(client, "up/load")
    params = {"digest": DIGEST} if method == "PUT" else {}
    response = await client.request(
        method, location, params=params, content=streamed(DATA[:8]), headers={"Content-Range": "0-9"}
    )
    assert response.status_code == 416, response.text
    assert response.headers["Range"] == "0-7"
    assert await upload_end(client, location) == "0-7"
    assert await blob_status(client, "up/load", DIGEST) == 404
    await assert_created(client, await finish_upload(client, location, DIGEST, DATA[8:]), "up/load", DATA)
