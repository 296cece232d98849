"""``/v2/<name>/manifests/<reference>``: push, fetch with negotiation, conditional GET, refusals, delete.

spec.md "Pulling manifests" (end-3), "Pushing Manifests" (end-7) and "Pushing a manifest with a subject field",
"Deleting tags" / "Deleting Manifests" (end-9), "Error Codes"; image-spec descriptor.md "Digests" (exact bytes).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DRIVERS,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    UNKNOWN_DIGEST,
    assert_error,
    blob_status,
    client_for,
    descriptor,
    digest_of,
    encode,
    image_manifest,
    index_manifest,
    manifest_status,
    path_of,
    push_blob,
    push_image,
    put_manifest,
)

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


@pytest.mark.parametrize("by_digest", [False, True])
async def test_put_manifest(client: httpx.AsyncClient, by_digest: bool) -> None:
    # end-7: 201 Created, Location of a pullable manifest, Docker-Content-Digest of the uploaded bytes
    await push_blob(client, "img", b"config")
    await push_blob(client, "img", b"layer")
    body = image_manifest(b"config", [b"layer"])
    reference = digest_of(body) if by_digest else "v1"
    response = await put_manifest(client, "img", reference, body)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    assert path_of(response.headers["Location"]) == f"/v2/img/manifests/{digest_of(body)}"
    assert "OCI-Subject" not in response.headers
    fetched = await client.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.content == body
    assert await manifest_status(client, "img", "v1") == (404 if by_digest else 200)


async def test_digest_is_of_the_exact_bytes(client: httpx.AsyncClient) -> None:
    # "The registry MUST store the manifest exactly as provided, without modification of its byte representation"
    await push_blob(client, "img", b"config")
    doc = json.loads(image_manifest(b"config", []))
    body = b"\n\t " + json.dumps(doc, indent=7, separators=(" ,", " :  ")).encode() + b"\r\n\n"
    assert digest_of(body) != digest_of(encode(doc))
    response = await put_manifest(client, "img", "spaced", body)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    for reference in ("spaced", digest_of(body)):
        fetched = await client.get(f"/v2/img/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert fetched.content == body
        assert fetched.headers["Docker-Content-Digest"] == digest_of(body)
    assert await manifest_status(client, "img", digest_of(encode(doc))) == 404


async def test_put_by_digest_that_does_not_match(client: httpx.AsyncClient) -> None:
    # "Error Codes": DIGEST_INVALID; nothing stored under either digest
    body, _ = await push_image(client, "img", "base")
    other = image_manifest(b"config", [])
    response = await put_manifest(client, "img", digest_of(body), other)
    assert_error(response, 400, "DIGEST_INVALID")
    assert await manifest_status(client, "img", digest_of(other)) == 404
    assert (await client.get(f"/v2/img/manifests/{digest_of(body)}")).content == body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("by_digest", [False, True])
async def test_get_manifest(client: httpx.AsyncClient, method: str, by_digest: bool) -> None:
    # end-3: 200 with Content-Type of the manifest, Docker-Content-Digest; HEAD with Content-Length and no body
    body, digest = await push_image(client, "img", "latest", media_type=DOCKER_MANIFEST)
    response = await client.request(method, f"/v2/img/manifests/{digest if by_digest else 'latest'}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Content-Length"] == str(len(body))
    assert response.content == (body if method == "GET" else b"")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("{etag}", id="exact"),
        pytest.param("*", id="any"),
        pytest.param('"sha256:{other}", {etag}', id="list"),
        pytest.param('"sha256:{other}",{etag}', id="list-no-space"),
        pytest.param('"sha256:{other}" ,  {etag}', id="list-wide"),
        pytest.param("W/{etag}", id="weak"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_if_none_match(client: httpx.AsyncClient, method: str, header: str) -> None:
    # RFC 9110 13.1.2: If-None-Match is a list compared weakly; a match on GET/HEAD -> 304 Not Modified, no body
    await push_image(client, "img", "latest")
    etag = (await client.get("/v2/img/manifests/latest")).headers["ETag"]
    value = header.format(etag=etag, other="1" * 64)
    response = await client.request(method, "/v2/img/manifests/latest", headers={"If-None-Match": value})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.content == b""
    stale = await client.request(method, "/v2/img/manifests/latest", headers={"If-None-Match": f'"{UNKNOWN_DIGEST}"'})
    assert stale.status_code == 200


def _too_big() -> bytes:
    doc = json.loads(image_manifest(b"config", []))
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    return encode(doc)


REFUSED = [
    pytest.param(b"{not json", OCI_MANIFEST, 400, "MANIFEST_INVALID", id="invalid-json"),
    pytest.param(b"[]", OCI_MANIFEST, 400, "MANIFEST_INVALID", id="not-an-object"),
    pytest.param(
        encode({"schemaVersion": 1, "name": "img", "tag": "t", "fsLayers": []}),
        "application/vnd.docker.distribution.manifest.v1+json",
        400,
        "MANIFEST_INVALID",
        id="schema1",
    ),
    pytest.param(image_manifest(b"config", []), DOCKER_MANIFEST, 400, "MANIFEST_INVALID", id="mediatype-mismatch"),
    pytest.param(
        image_manifest(b"config", [b"missing"]), OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN", id="unknown-layer"
    ),
    pytest.param(
        image_manifest(b"unknown config", []), OCI_MANIFEST, 400, "MANIFEST_BLOB_UNKNOWN", id="unknown-config"
    ),
    pytest.param(
        index_manifest([(b"no such child", AMD64)]), OCI_INDEX, 400, "MANIFEST_BLOB_UNKNOWN", id="unknown-child"
    ),
    pytest.param(_too_big(), OCI_MANIFEST, 413, "MANIFEST_INVALID", id="over-4MiB"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), REFUSED)
async def test_refused_manifest_is_not_stored(
    client: httpx.AsyncClient, body: bytes, content_type: str, status: int, code: str
) -> None:
    # "Pushing Manifests": MANIFEST_INVALID / MANIFEST_BLOB_UNKNOWN, and 413 Payload Too Large over the size limit
    await push_blob(client, "img", b"config")
    assert_error(await put_manifest(client, "img", "bad", body, content_type), status, code)
    assert_error(await client.get("/v2/img/manifests/bad"), 404, "MANIFEST_UNKNOWN")
    assert await manifest_status(client, "img", digest_of(body)) == 404
    assert (await client.get("/v2/img/tags/list")).json()["tags"] == []


async def test_refused_manifest_leaves_no_repository_behind(client: httpx.AsyncClient) -> None:
    # a refused push has no effect: the repository is not created and the empty config is not linked into it
    empty = descriptor(OCI_EMPTY, b"{}")
    layer = descriptor("application/vnd.example.layer", b"never pushed")
    body = encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [layer]})
    assert_error(await put_manifest(client, "fresh", "bad", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert await blob_status(client, "fresh", digest_of(b"{}")) == 404
    assert "fresh" not in (await client.get("/v2/_catalog")).json()["repositories"]
    assert_error(await client.get("/v2/fresh/tags/list"), 404, "NAME_UNKNOWN")


async def test_delete_by_digest_removes_its_tags(client: httpx.AsyncClient) -> None:
    # "Deleting Manifests": 202; then GET by digest "and any tag pointing to that digest will return a 404"
    body, digest = await push_image(client, "img", "one")
    assert (await put_manifest(client, "img", "two", body)).status_code == 201
    response = await client.delete(f"/v2/img/manifests/{digest}")
    assert response.status_code == 202
    for reference in (digest, "one", "two"):
        assert_error(await client.get(f"/v2/img/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert (await client.get("/v2/img/tags/list")).json()["tags"] == []


async def test_delete_by_tag_removes_only_the_tag(client: httpx.AsyncClient) -> None:
    # "Deleting tags": 202; "Once deleted, a GET to /v2/<name>/manifests/<tag> will return a 404"
    body, digest = await push_image(client, "img", "one")
    assert (await put_manifest(client, "img", "two", body)).status_code == 201
    assert (await client.delete("/v2/img/manifests/one")).status_code == 202
    assert_error(await client.get("/v2/img/manifests/one"), 404, "MANIFEST_UNKNOWN")
    assert await manifest_status(client, "img", digest) == 200
    assert await manifest_status(client, "img", "two") == 200
    assert (await client.get("/v2/img/tags/list")).json()["tags"] == ["two"]


@pytest.mark.parametrize("reference", ["missing", UNKNOWN_DIGEST])
@pytest.mark.parametrize("name", ["img", "no/such/repo"])
async def test_delete_unknown_manifest(client: httpx.AsyncClient, name: str, reference: str) -> None:
    await push_image(client, "img", "present")
    assert_error(await client.delete(f"/v2/{name}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert await manifest_status(client, "img", "present") == 200


@pytest.mark.parametrize("driver", DRIVERS)
async def test_delete_disabled(tmp_path: Path, driver: str) -> None:
    # end-9: "If tag deletion is disabled, the registry MUST respond with either a 400 Bad Request or a 405"
    async with client_for(tmp_path, driver, REGISTRY_STORAGE_DELETE_ENABLED="false") as client:
        _, digest = await push_image(client, "img", "keep")
        for reference in ("keep", digest):
            assert_error(await client.delete(f"/v2/img/manifests/{reference}"), 405, "UNSUPPORTED")
            assert await manifest_status(client, "img", reference) == 200


async def push_docker_list(client: httpx.AsyncClient) -> tuple[bytes, bytes]:
    """A Docker manifest list tagged ``latest`` with linux/arm64 and linux/amd64 children; the list and amd64 bytes."""
    arm, _ = await push_image(client, "multi", "arm", seed="arm", media_type=DOCKER_MANIFEST)
    amd, _ = await push_image(client, "multi", "amd", seed="amd", media_type=DOCKER_MANIFEST)
    listing = index_manifest([(arm, ARM64), (amd, AMD64)], DOCKER_LIST)
    assert (await put_manifest(client, "multi", "latest", listing, DOCKER_LIST)).status_code == 201
    return listing, amd


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_docker_manifest_list_negotiation(client: httpx.AsyncClient, method: str) -> None:
    # a client accepting only a single-platform manifest gets the list's linux/amd64 entry (distribution's behaviour)
    listing, amd = await push_docker_list(client)
    single = await client.request(method, "/v2/multi/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert single.status_code == 200
    assert single.headers["Docker-Content-Digest"] == digest_of(amd)
    assert single.headers["Content-Type"] == DOCKER_MANIFEST
    assert single.content == (amd if method == "GET" else b"")

    accept = f"{DOCKER_MANIFEST}, {DOCKER_LIST}"
    both = await client.request(method, "/v2/multi/manifests/latest", headers={"Accept": accept})
    assert both.headers["Docker-Content-Digest"] == digest_of(listing)
    assert both.headers["Content-Type"] == DOCKER_LIST
    assert both.content == (listing if method == "GET" else b"")


async def test_manifest_list_by_digest_is_never_swapped(client: httpx.AsyncClient) -> None:
    # content addressed by digest is that content: distribution negotiates only when a tag is asked for
    # (spec "Pulling manifests": "If <reference> is a digest, clients should verify ... matches that digest")
    listing, _ = await push_docker_list(client)
    response = await client.get(f"/v2/multi/manifests/{digest_of(listing)}", headers={"Accept": DOCKER_MANIFEST})
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest_of(listing)
    assert response.content == listing


async def test_subject_is_acknowledged(client: httpx.AsyncClient) -> None:
    # "Pushing a manifest with a subject field": the registry answers with "OCI-Subject: <subject digest>"
    subject_body, subject_digest = await push_image(client, "img", "base")
    await push_blob(client, "img", b"sbom")
    body = image_manifest(b"sbom", [], subject=descriptor(OCI_MANIFEST, subject_body))
    response = await put_manifest(client, "img", digest_of(body), body)
    assert response.status_code == 201, response.text
    assert response.headers["OCI-Subject"] == subject_digest
    referrers = (await client.get(f"/v2/img/referrers/{subject_digest}")).json()["manifests"]
    assert [r["digest"] for r in referrers] == [digest_of(body)]


async def test_subject_may_be_unknown(client: httpx.AsyncClient) -> None:
    # "Push": "A registry MUST accept a manifest that includes a subject field referencing ... not yet exist"
    subject = {"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 10}
    _, digest = await push_image(client, "img", "early", subject=subject)
    assert await manifest_status(client, "img", digest) == 200


async def test_same_tag_pushed_twice_at_once(client: httpx.AsyncClient) -> None:
    # concurrent pushes of one tag: both succeed, the tag ends on one of them, no 500
    await push_blob(client, "race", b"config")
    bodies = [image_manifest(b"config", [], annotations={"n": str(i)}) for i in range(4)]
    responses = await asyncio.gather(*(put_manifest(client, "race", "latest", body) for body in bodies))
    assert [r.status_code for r in responses] == [201] * len(bodies), [r.text for r in responses]
    current = await client.get("/v2/race/manifests/latest")
    assert current.content in bodies
    for body in bodies:
        assert await manifest_status(client, "race", digest_of(body)) == 200


INVALID_TAGS = ["-bad", ".bad", "a" * 129, "bad+tag", "ba%21d"]


@pytest.mark.parametrize("tag", INVALID_TAGS)
@pytest.mark.parametrize(("method", "status", "code"), [("PUT", 400, "TAG_INVALID"), ("DELETE", 400, "TAG_INVALID")])
async def test_invalid_tag_refused(client: httpx.AsyncClient, method: str, status: int, code: str, tag: str) -> None:
    # "<reference> ... a tag matching [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}": refused with distribution's TAG_INVALID
    await push_blob(client, "img", b"config")
    body = image_manifest(b"config", [])
    response = await client.request(method, f"/v2/img/manifests/{tag}", content=body if method == "PUT" else None)
    assert_error(response, status, code)
    assert (await client.get("/v2/img/tags/list")).json()["tags"] == []
    assert await manifest_status(client, "img", digest_of(body)) == 404


@pytest.mark.parametrize("tag", INVALID_TAGS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_invalid_tag_is_unknown(client: httpx.AsyncClient, method: str, tag: str) -> None:
    # fetching by an impossible tag: 404 MANIFEST_UNKNOWN, as the OCI conformance suite expects
    await push_image(client, "img", "latest")
    assert_error(await client.request(method, f"/v2/img/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("tag", ["_", "A", "a" * 128, "v1.0-rc_1", "9"])
async def test_edge_tags_accepted(client: httpx.AsyncClient, tag: str) -> None:
    await push_image(client, "img", tag)
    assert await manifest_status(client, "img", tag) == 200
    assert (await client.get("/v2/img/tags/list")).json()["tags"] == [tag]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("if_none_match", [False, True])
async def test_pulling_manifests_docker_content_digest_on_every_get_and_head(
    client: httpx.AsyncClient, method: str, if_none_match: bool
) -> None:
    # spec main "Pulling manifests" / "Checking if content exists": a successful response MUST contain the digest
    _, digest = await push_image(client, "dcd", "latest")
    headers = {"If-None-Match": f'"{digest}"'} if if_none_match else {}
    for reference in ("latest", digest):
        response = await client.request(method, f"/v2/dcd/manifests/{reference}", headers=headers)
        assert response.status_code == (304 if if_none_match else 200), response.text
        assert response.headers["Docker-Content-Digest"] == digest
