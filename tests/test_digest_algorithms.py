"""sha512 end to end, and ``?digest-algorithm=`` on ``POST /v2/<name>/blobs/uploads/`` (distribution-spec main branch,
after v1.1.1: spec.md "Pushing a blob in chunks", end-4c, and "Pushing blobs").

"When pushing a blob with a digest algorithm other than ``sha256``, the post request SHOULD include the
``digest-algorithm`` parameter" ... "if the client provided digest is invalid or uses an unsupported algorithm, the
registry SHOULD respond with a response code ``400 Bad Request``."
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from registry.content import paths
from registry.digests import Digest
from tests.api_helpers import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    app_of,
    assert_error,
    encode,
    finish_upload,
    patch_chunk,
    path_of,
)

DATA = b"0123456789abcdefghij" * 5


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def upload_reads(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every upload's data read back from storage (to hash it again) from now on."""
    backend = app_of(client).state.services.uploads.backend
    reads: list[str] = []
    original = backend.reader

    def reader(path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if path.startswith(paths.uploads_root()):
            reads.append(path)
        return original(path, offset, length)

    monkeypatch.setattr(backend, "reader", reader)
    return reads


async def assert_blob(client: httpx.AsyncClient, name: str, data: bytes) -> None:
    """Served under its sha512 digest with that digest in ``Docker-Content-Digest``, stored under blobs/sha512/."""
    digest = sha512(data)
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/v2/{name}/blobs/{digest}")
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["Content-Length"] == str(len(data))
    assert (await client.get(f"/v2/{name}/blobs/{digest}")).content == data
    stored = paths.blob_path(Digest.parse(digest))
    assert stored.startswith(f"{paths.ROOT}/blobs/sha512/")
    assert await app_of(client).state.services.backend.get_content(stored) == data


async def test_pushing_a_blob_in_chunks_digest_algorithm_sha512(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = upload_reads(client, monkeypatch)
    started = await client.post("/v2/algo/blobs/uploads/?digest-algorithm=sha512", headers={"Content-Length": "0"})
    assert started.status_code == 202, started.text
    location = path_of(started.headers["Location"])
    patched = await patch_chunk(client, location, DATA[:40], 0)
    assert patched.status_code == 202, patched.text
    finished = await finish_upload(client, path_of(patched.headers["Location"]), sha512(DATA), DATA[40:])
    assert finished.status_code == 201, finished.text
    assert finished.headers["Docker-Content-Digest"] == sha512(DATA)
    assert path_of(finished.headers["Location"]) == f"/v2/algo/blobs/{sha512(DATA)}"
    await assert_blob(client, "algo", DATA)
    assert reads == [], "the upload was hashed with sha512 as it arrived, not read back"


async def test_pushing_a_blob_monolithically_with_a_sha512_digest(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = upload_reads(client, monkeypatch)
    response = await client.post("/v2/algo/blobs/uploads/", params={"digest": sha512(DATA)}, content=DATA)
    assert response.status_code == 201, response.text
    await assert_blob(client, "algo", DATA)
    assert reads == []


async def test_pushing_blobs_another_algorithm_at_put_is_verified_from_storage(client: httpx.AsyncClient) -> None:
    # a session started as sha256 (the default) may still finish with a sha512 digest: the bytes are hashed again
    started = await client.post("/v2/algo/blobs/uploads/", headers={"Content-Length": "0"})
    finished = await finish_upload(client, path_of(started.headers["Location"]), sha512(DATA), DATA)
    assert finished.status_code == 201, finished.text
    await assert_blob(client, "algo", DATA)


async def test_pushing_blobs_sha512_digest_that_does_not_match(client: httpx.AsyncClient) -> None:
    started = await client.post("/v2/algo/blobs/uploads/?digest-algorithm=sha512", headers={"Content-Length": "0"})
    finished = await finish_upload(client, path_of(started.headers["Location"]), sha512(b"other"), DATA)
    assert_error(finished, 400, "DIGEST_INVALID")
    assert (await client.head(f"/v2/algo/blobs/{sha512(b'other')}")).status_code == 404


@pytest.mark.parametrize("algorithm", ["md5", "sha384", "SHA512", "", "sha256+b64"])
async def test_pushing_blobs_unsupported_digest_algorithm_is_400(client: httpx.AsyncClient, algorithm: str) -> None:
    response = await client.post(
        "/v2/algo/blobs/uploads/", params={"digest-algorithm": algorithm}, headers={"Content-Length": "0"}
    )
    error = assert_error(response, 400, "DIGEST_INVALID")
    assert error["detail"]["algorithm"] == algorithm


async def test_pushing_manifests_naming_sha512_blobs_by_a_sha512_digest(client: httpx.AsyncClient) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', DATA
    for blob in (config, layer):
        response = await client.post("/v2/algo/blobs/uploads/", params={"digest": sha512(blob)}, content=blob)
        assert response.status_code == 201, response.text
    manifest = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha512(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha512(layer), "size": len(layer)}],
        }
    )
    digest = sha512(manifest)
    pushed = await client.put(f"/v2/algo/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["Docker-Content-Digest"] == digest
    assert path_of(pushed.headers["Location"]) == f"/v2/algo/manifests/{digest}"
    for method in ("GET", "HEAD"):
        fetched = await client.request(method, f"/v2/algo/manifests/{digest}")
        assert fetched.status_code == 200, fetched.text
        assert fetched.headers["Docker-Content-Digest"] == digest
    assert (await client.get(f"/v2/algo/manifests/{digest}")).content == manifest
    missing = manifest.replace(sha512(layer).encode(), sha512(b"never pushed").encode())
    refused = await client.put(
        f"/v2/algo/manifests/{sha512(missing)}", content=missing, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(refused, 400, "MANIFEST_BLOB_UNKNOWN")
