"""The OCI distribution-spec conformance suite (opencontainers/distribution-spec v1.1.1, ``conformance/``), in process.

One test per ``g.Specify`` of the suite's four workflows, named ``test_<workflow>_<context>_<case>``, and one
that runs the four in the suite's order against one namespace (``00_conformance_suite_test.go``):

- Pull (``01_pull_test.go``): blobs and manifests by digest and tag, HEAD and GET, 404s, the OCI error body.
- Push (``02_push_test.go``): streamed PATCH, monolithic POST+PUT and POST ``?digest=``, chunked PATCH with
  ``Content-Range`` (416 out of order, upload status by GET), cross-repository mount with and without ``from``,
  manifest upload (tags, no layers).
- Content Discovery (``03_discovery_test.go``): tag listing with ``n`` and ``last``, referrers with and without the
  ``artifactType`` filter, for image manifests and an index with a ``subject``, and for a subject never pushed.
- Content Management (``04_management_test.go``): delete a tag, a manifest and blobs, then the 404s.

Each workflow's Setup runs in a fixture (every test gets a fresh registry), each Teardown is a test of its own, in
both orders the suite supports (``OCI_DELETE_MANIFEST_BEFORE_BLOBS``). Where the suite accepts several answers
because a registry MAY disable deletes, mounting or the referrers API, the answer of this registry's configuration
(deletes enabled, mount and referrers supported) is required, with the spec section that makes it a MUST. Where the
suite accepts a 404 for content already removed along with what referenced it, so does this port (with the error
code), and the content must then be gone. The suite's data and request steps are in ``tests/oci_helpers.py``.
"""

from __future__ import annotations

import httpx
import pytest

from tests.oci_helpers import (
    ANNOTATION_KEY,
    ARTIFACT_TYPE_A,
    ARTIFACT_TYPE_FILTER,
    CROSSMOUNT_NAMESPACE,
    DATA,
    EMPTY_JSON_DIGEST,
    EMPTY_LAYER_TEST_TAG,
    ERROR_CODES,
    INVALID_MANIFEST_CONTENT,
    NAMESPACE,
    NONEXISTENT_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    OCTET_STREAM,
    TEST_TAG_NAME,
    ChunkedBlob,
    Content,
    Refs,
    blob_url,
    error_codes,
    location,
    manifest_url,
    push_blob,
    push_manifest,
    random_blob,
    start_upload,
    teardown,
    uploads_url,
)

TEARDOWN_ORDERS = pytest.mark.parametrize(
    "delete_manifest_before_blobs", [True, False], ids=["manifests-before-blobs", "blobs-before-manifests"]
)


def assert_blob_response(response: httpx.Response, blob: Content, *, head: bool = False) -> None:
    """200 with the blob's bytes, its digest (spec "Pulling blobs") and length (spec "Checking if content exists")."""
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == blob.digest
    assert response.headers["content-length"] == str(blob.length)
    assert response.content == (b"" if head else blob.data)


def assert_manifest_response(response: httpx.Response, manifest: Content, *, head: bool = False) -> None:
    """200 with the exact bytes pushed, their digest, length and media type (spec "Pulling manifests")."""
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == manifest.digest
    assert response.headers["content-type"] == OCI_MANIFEST
    assert response.headers["content-length"] == str(manifest.length)
    assert response.content == (b"" if head else manifest.data)


def assert_not_found(response: httpx.Response, code: str) -> None:
    assert response.status_code == 404, response.text
    if response.request.method != "HEAD":
        assert code in error_codes(response)


async def assert_all_gone(client: httpx.AsyncClient, refs: Refs) -> None:
    for reference in refs.manifests:
        assert (await client.get(manifest_url(reference))).status_code == 404, reference
    for digest in refs.blobs:
        assert (await client.get(blob_url(digest))).status_code == 404, digest


# --- Pull ------------------------------------------------------------------------------------------------------------


async def setup_pull(client: httpx.AsyncClient) -> Refs:
    """Pull / Setup: two config blobs, the layer, manifests[0] by tag ``tagtest0`` and manifests[1] by digest."""
    refs = Refs()
    for blob in (DATA.configs[0], DATA.configs[1], DATA.layer):
        await push_blob(client, blob, refs)
    await push_manifest(client, DATA.manifests[0], refs, tag=TEST_TAG_NAME)
    await push_manifest(client, DATA.manifests[1], refs)
    return refs


@pytest.fixture
async def pull_setup(client: httpx.AsyncClient) -> Refs:
    return await setup_pull(client)


async def test_pull_blobs_head_nonexistent_blob_gets_404(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.head(blob_url(DATA.dummy_digest))
    assert_not_found(response, "BLOB_UNKNOWN")
    assert response.content == b""


async def test_pull_blobs_head_existing_blob_gets_200(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.head(blob_url(DATA.configs[0].digest))
    assert_blob_response(response, DATA.configs[0], head=True)


async def test_pull_blobs_get_nonexistent_blob_gets_404(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    assert_not_found(await client.get(blob_url(DATA.dummy_digest)), "BLOB_UNKNOWN")


async def test_pull_blobs_get_existing_blob_gets_200(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    assert_blob_response(await client.get(blob_url(DATA.configs[0].digest)), DATA.configs[0])


async def test_pull_manifests_head_nonexistent_manifest_gets_404(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.head(manifest_url(NONEXISTENT_MANIFEST), headers={"Accept": OCI_MANIFEST})
    assert_not_found(response, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("slot", [0, 1], ids=["manifest0", "manifest1"])
async def test_pull_manifests_head_by_digest_gets_200(client: httpx.AsyncClient, pull_setup: Refs, slot: int) -> None:
    manifest = DATA.manifests[slot]
    response = await client.head(manifest_url(manifest.digest), headers={"Accept": OCI_MANIFEST})
    assert_manifest_response(response, manifest, head=True)


async def test_pull_manifests_head_by_tag_gets_200(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.head(manifest_url(TEST_TAG_NAME), headers={"Accept": OCI_MANIFEST})
    assert_manifest_response(response, DATA.manifests[0], head=True)


async def test_pull_manifests_get_nonexistent_manifest_gets_404(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.get(manifest_url(NONEXISTENT_MANIFEST), headers={"Accept": OCI_MANIFEST})
    assert_not_found(response, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("slot", [0, 1], ids=["manifest0", "manifest1"])
async def test_pull_manifests_get_by_digest_gets_200(client: httpx.AsyncClient, pull_setup: Refs, slot: int) -> None:
    manifest = DATA.manifests[slot]
    response = await client.get(manifest_url(manifest.digest), headers={"Accept": OCI_MANIFEST})
    assert_manifest_response(response, manifest)


async def test_pull_manifests_get_by_tag_gets_200(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    response = await client.get(manifest_url(TEST_TAG_NAME), headers={"Accept": OCI_MANIFEST})
    assert_manifest_response(response, DATA.manifests[0])


async def test_pull_error_codes_400_body_is_oci_error_json(client: httpx.AsyncClient, pull_setup: Refs) -> None:
    """Error codes: "400 response body should contain OCI-conforming JSON message" (400, or 404 for an unknown)."""
    response = await client.request(
        "GET",
        manifest_url("sha256:totallywrong"),
        headers={"Content-Type": OCI_MANIFEST},
        content=INVALID_MANIFEST_CONTENT,
    )
    assert response.status_code in (400, 404), response.text
    codes = error_codes(response)
    assert codes[0] in ERROR_CODES
    assert all(isinstance(entry["message"], str) for entry in response.json()["errors"])


@TEARDOWN_ORDERS
async def test_pull_teardown_deletes_setup_content(
    client: httpx.AsyncClient, pull_setup: Refs, delete_manifest_before_blobs: bool
) -> None:
    await teardown(client, pull_setup, delete_manifest_before_blobs=delete_manifest_before_blobs)
    await assert_all_gone(client, pull_setup)


# --- Push: blob upload streamed ----------------------------------------------------------------------------------


async def streamed_patch(client: httpx.AsyncClient) -> httpx.Response:
    session = await start_upload(client)
    return await client.patch(location(session), headers={"Content-Type": OCTET_STREAM}, content=DATA.blob_a.data)


async def streamed_put(client: httpx.AsyncClient) -> httpx.Response:
    patch = await streamed_patch(client)
    assert patch.status_code == 202, patch.text
    # the suite sends Content-Length: <blob length> with no body; on the wire Go sends an empty body
    return await client.put(
        location(patch), params={"digest": DATA.blob_a.digest}, headers={"Content-Type": OCTET_STREAM}
    )


async def test_push_streamed_patch_with_blob_in_body_gets_202(client: httpx.AsyncClient) -> None:
    response = await streamed_patch(client)
    assert response.status_code == 202, response.text
    assert location(response).startswith(uploads_url())


async def test_push_streamed_put_to_session_with_digest_gets_201(client: httpx.AsyncClient) -> None:
    response = await streamed_put(client)
    assert response.status_code == 201, response.text
    assert_blob_response(await client.get(location(response)), DATA.blob_a)


# --- Push: blob upload monolithic -------------------------------------------------------------------------------


async def post_with_digest(client: httpx.AsyncClient, blob: Content) -> httpx.Response:
    return await client.post(
        uploads_url(), params={"digest": blob.digest}, headers={"Content-Type": OCTET_STREAM}, content=blob.data
    )


async def post_then_put(client: httpx.AsyncClient, blob: Content) -> httpx.Response:
    session = await start_upload(client)
    return await client.put(
        location(session), params={"digest": blob.digest}, headers={"Content-Type": OCTET_STREAM}, content=blob.data
    )


async def test_push_monolithic_get_nonexistent_blob_gets_404(client: httpx.AsyncClient) -> None:
    assert_not_found(await client.get(blob_url(DATA.dummy_digest)), "BLOB_UNKNOWN")


async def test_push_monolithic_post_with_digest_and_blob_gets_201_or_202(client: httpx.AsyncClient) -> None:
    response = await post_with_digest(client, DATA.configs[1])
    assert response.status_code in (201, 202), response.text
    location(response)


async def test_push_monolithic_get_blob_after_post_with_digest_matches_its_status(client: httpx.AsyncClient) -> None:
    """The suite's "GET request to blob URL from prior request should yield 200 or 404 based on response code"."""
    posted = await post_with_digest(client, DATA.configs[1])
    response = await client.get(blob_url(DATA.configs[1].digest))
    if posted.status_code == 202:  # single-POST upload unsupported: a session was opened instead
        assert_not_found(response, "BLOB_UNKNOWN")
    else:
        assert posted.status_code == 201, posted.text
        assert_blob_response(response, DATA.configs[1])
        assert_blob_response(await client.get(location(posted)), DATA.configs[1])


async def test_push_monolithic_post_gets_session_id(client: httpx.AsyncClient) -> None:
    response = await client.post(uploads_url())
    assert response.status_code == 202, response.text
    assert location(response).startswith(uploads_url())
    assert len(location(response)) > len(uploads_url())


async def test_push_monolithic_put_blob_gets_201(client: httpx.AsyncClient) -> None:
    response = await post_then_put(client, DATA.configs[1])
    assert response.status_code == 201, response.text
    assert_blob_response(await client.get(location(response)), DATA.configs[1])


async def test_push_monolithic_get_existing_blob_gets_200(client: httpx.AsyncClient) -> None:
    assert (await post_then_put(client, DATA.configs[1])).status_code == 201
    assert_blob_response(await client.get(blob_url(DATA.configs[1].digest)), DATA.configs[1])


async def test_push_monolithic_put_layer_blob_gets_201(client: httpx.AsyncClient) -> None:
    response = await post_then_put(client, DATA.layer)
    assert response.status_code == 201, response.text
    assert_blob_response(await client.get(location(response)), DATA.layer)


async def test_push_monolithic_get_existing_layer_gets_200(client: httpx.AsyncClient) -> None:
    assert (await post_then_put(client, DATA.layer)).status_code == 201
    assert_blob_response(await client.get(blob_url(DATA.layer.digest)), DATA.layer)


# --- Push: blob upload chunked -----------------------------------------------------------------------------------


async def chunked_session(client: httpx.AsyncClient) -> tuple[str, ChunkedBlob]:
    """POST with ``Content-Length: 0``; the chunked blob is rebuilt larger when ``OCI-Chunk-Min-Length`` asks so."""
    response = await start_upload(client, content=b"")
    blob = DATA.blob_b
    min_length = response.headers.get("oci-chunk-min-length")
    if min_length is not None and int(min_length) > len(blob.chunk1):
        blob = ChunkedBlob.of(random_blob(int(min_length) * 2 - 2, 2).data)
    return location(response), blob


async def patch_chunk(client: httpx.AsyncClient, url: str, chunk: bytes, content_range: str) -> httpx.Response:
    headers = {"Content-Type": OCTET_STREAM, "Content-Range": content_range}
    return await client.patch(url, headers=headers, content=chunk)


async def first_chunk(client: httpx.AsyncClient) -> tuple[str, ChunkedBlob, httpx.Response]:
    """POST, then PATCH the first chunk: the POST's Location, the blob, the PATCH response."""
    url, blob = await chunked_session(client)
    return url, blob, await patch_chunk(client, url, blob.chunk1, blob.chunk1_range)


async def second_chunk(client: httpx.AsyncClient) -> tuple[ChunkedBlob, httpx.Response]:
    """First chunk, the rejected retry, the status GET, then the second chunk at the GET's Location."""
    url, blob, first = await first_chunk(client)
    assert first.status_code == 202, first.text
    retry = await patch_chunk(client, url, blob.chunk1, blob.chunk1_range)
    assert retry.status_code == 416, retry.text
    status = await client.get(url)
    assert status.status_code == 204, status.text
    return blob, await patch_chunk(client, location(status), blob.chunk2, blob.chunk2_range)


async def test_push_chunked_out_of_order_chunk_gets_416(client: httpx.AsyncClient) -> None:
    url, blob = await chunked_session(client)
    response = await patch_chunk(client, url, blob.chunk2, blob.chunk2_range)
    assert response.status_code == 416, response.text
    status = await client.get(url)  # the session survives: spec "a GET ... retrieves the current valid offset"
    assert status.status_code == 204, status.text


async def test_push_chunked_first_chunk_gets_202_with_range(client: httpx.AsyncClient) -> None:
    url, blob, response = await first_chunk(client)
    assert response.status_code == 202, response.text
    assert response.headers["range"] == blob.chunk1_range
    assert location(response).startswith(uploads_url())


async def test_push_chunked_retry_previous_chunk_gets_416(client: httpx.AsyncClient) -> None:
    url, blob, first = await first_chunk(client)
    assert first.status_code == 202, first.text
    response = await patch_chunk(client, url, blob.chunk1, blob.chunk1_range)
    assert response.status_code == 416, response.text


async def test_push_chunked_get_stale_upload_gets_204_with_range_and_location(client: httpx.AsyncClient) -> None:
    url, blob, first = await first_chunk(client)
    assert first.status_code == 202, first.text
    assert (await patch_chunk(client, url, blob.chunk1, blob.chunk1_range)).status_code == 416
    response = await client.get(url)
    assert response.status_code == 204, response.text
    assert location(response).startswith(uploads_url())
    assert response.headers["range"] == blob.chunk1_range


async def test_push_chunked_second_chunk_gets_202(client: httpx.AsyncClient) -> None:
    blob, response = await second_chunk(client)
    assert response.status_code == 202, response.text
    assert location(response).startswith(uploads_url())
    assert response.headers["range"] == f"0-{blob.blob.length - 1}"


async def test_push_chunked_put_with_digest_gets_201(client: httpx.AsyncClient) -> None:
    blob, last = await second_chunk(client)
    assert last.status_code == 202, last.text
    response = await client.put(
        location(last), params={"digest": blob.blob.digest}, headers={"Content-Type": OCTET_STREAM}, content=b""
    )
    assert response.status_code == 201, response.text
    assert_blob_response(await client.get(location(response)), blob.blob)
    assert_blob_response(await client.get(blob_url(blob.blob.digest)), blob.blob)


# --- Push: cross-repository blob mount ---------------------------------------------------------------------------


async def mount(
    client: httpx.AsyncClient, digest: str, source: str | None, name: str = CROSSMOUNT_NAMESPACE
) -> httpx.Response:
    """POST ``?mount=<digest>[&from=<source>]`` into ``name`` (the suite's ``mountBlob``)."""
    params = {"mount": digest} if source is None else {"mount": digest, "from": source}
    return await client.post(uploads_url(name), params=params)


async def mount_from_namespace(client: httpx.AsyncClient) -> httpx.Response:
    """Blob A pushed to the namespace (streamed, as in the suite), then mounted into the cross-mount namespace."""
    assert (await streamed_put(client)).status_code == 201
    return await mount(client, DATA.blob_a.digest, NAMESPACE)


async def test_push_mount_without_from_argument_gets_session_id(client: httpx.AsyncClient) -> None:
    """The suite's "Cross-mounting of a blob without the from argument should yield session id" (blob unknown)."""
    response = await mount(client, DATA.dummy_digest, None)
    assert response.status_code == 202, response.text
    assert location(response).startswith(uploads_url(CROSSMOUNT_NAMESPACE))


async def test_push_mount_from_another_repository_gets_201_or_202(client: httpx.AsyncClient) -> None:
    response = await mount_from_namespace(client)
    assert response.status_code in (201, 202), response.text
    location(response)


async def test_push_mount_get_blob_within_crossmount_namespace_gets_200(client: httpx.AsyncClient) -> None:
    """A 201 mount's Location is the blob in the cross-mount namespace; a 202 opened an upload session there."""
    response = await mount_from_namespace(client)
    if response.status_code == 201:
        assert location(response) == blob_url(DATA.blob_a.digest, CROSSMOUNT_NAMESPACE)
        assert_blob_response(await client.get(location(response)), DATA.blob_a)
    else:
        assert response.status_code == 202, response.text
        assert location(response).startswith(uploads_url(CROSSMOUNT_NAMESPACE))


async def test_push_mount_of_nonexistent_blob_gets_session_id(client: httpx.AsyncClient) -> None:
    """The suite's "Cross-mounting of nonexistent blob should yield session id": 202, upload in the target repo."""
    assert (await streamed_put(client)).status_code == 201
    response = await mount(client, DATA.dummy_digest, NAMESPACE)
    assert response.status_code == 202, response.text
    assert location(response).startswith(uploads_url(CROSSMOUNT_NAMESPACE))


async def test_push_mount_without_from_with_automatic_content_discovery_gets_201(client: httpx.AsyncClient) -> None:
    """OCI_AUTOMATIC_CROSSMOUNT=true: after the mount with ``from`` answered 201, a mount without it answers 201."""
    assert (await mount_from_namespace(client)).status_code == 201
    response = await mount(client, DATA.blob_a.digest, None)
    assert response.status_code == 201, response.text
    assert location(response) == blob_url(DATA.blob_a.digest, CROSSMOUNT_NAMESPACE)


async def test_push_mount_without_from_into_new_repository_gets_201(client: httpx.AsyncClient) -> None:
    """Spec "Mounting a blob": the registry MAY treat ``from`` as optional and mount a blob it can find."""
    assert (await streamed_put(client)).status_code == 201
    response = await mount(client, DATA.blob_a.digest, None)
    assert response.status_code == 201, response.text
    assert location(response) == blob_url(DATA.blob_a.digest, CROSSMOUNT_NAMESPACE)
    assert_blob_response(await client.get(location(response)), DATA.blob_a)


# --- Push: manifest upload ---------------------------------------------------------------------------------------


@pytest.fixture
async def push_blobs(client: httpx.AsyncClient) -> Refs:
    """What the push workflow has uploaded by its Manifest Upload context: config[1] and the layer."""
    refs = Refs()
    await push_blob(client, DATA.configs[1], refs)
    await push_blob(client, DATA.layer, refs)
    return refs


async def put_manifest_tags(client: httpx.AsyncClient, refs: Refs) -> list[httpx.Response]:
    return [await push_manifest(client, DATA.manifests[1], refs, tag=f"test{i}") for i in range(4)]


async def test_push_manifest_get_nonexistent_manifest_gets_404(client: httpx.AsyncClient, push_blobs: Refs) -> None:
    assert_not_found(await client.get(manifest_url(NONEXISTENT_MANIFEST)), "MANIFEST_UNKNOWN")


async def test_push_manifest_put_gets_201(client: httpx.AsyncClient, push_blobs: Refs) -> None:
    for response in await put_manifest_tags(client, push_blobs):
        assert response.status_code == 201, response.text
        assert response.headers["docker-content-digest"] == DATA.manifests[1].digest
        assert_manifest_response(await client.get(location(response)), DATA.manifests[1])
        assert "oci-subject" not in response.headers


async def test_push_manifest_put_with_no_layers_gets_201(client: httpx.AsyncClient, push_blobs: Refs) -> None:
    response = await push_manifest(client, DATA.empty_layer_manifest, push_blobs, tag=EMPTY_LAYER_TEST_TAG)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == DATA.empty_layer_manifest.digest
    assert_manifest_response(await client.get(manifest_url(EMPTY_LAYER_TEST_TAG)), DATA.empty_layer_manifest)


async def test_push_manifest_get_by_digest_gets_200(client: httpx.AsyncClient, push_blobs: Refs) -> None:
    await put_manifest_tags(client, push_blobs)
    response = await client.get(manifest_url(DATA.manifests[1].digest), headers={"Accept": OCI_MANIFEST})
    assert_manifest_response(response, DATA.manifests[1])


@TEARDOWN_ORDERS
async def test_push_teardown_deletes_manifests_and_blobs(
    client: httpx.AsyncClient, push_blobs: Refs, delete_manifest_before_blobs: bool
) -> None:
    await put_manifest_tags(client, push_blobs)
    await push_manifest(client, DATA.empty_layer_manifest, push_blobs, tag=EMPTY_LAYER_TEST_TAG)
    await teardown(client, push_blobs, delete_manifest_before_blobs=delete_manifest_before_blobs)
    await assert_all_gone(client, push_blobs)
    tags = await client.get(f"/v2/{NAMESPACE}/tags/list")
    assert tags.status_code == 200, tags.text
    assert tags.json()["tags"] == []


# --- Content Discovery ---------------------------------------------------------------------------------------------

DISCOVERY_TAGS = [f"{prefix}{i}" for i in range(4) for prefix in ("test", "TEST")]
SUBJECT = DATA.manifests[4]
REFERRERS_OF_SUBJECT = [
    DATA.refs_manifest_a_config,
    DATA.refs_manifest_a_layer,
    DATA.refs_index,
    DATA.refs_manifest_b_config,
    DATA.refs_manifest_b_layer,
]


async def setup_discovery(client: httpx.AsyncClient) -> Refs:
    """Content Discovery / Setup: manifests[2] under eight tags, then the references setup around manifests[4]."""
    refs = Refs()
    await push_blob(client, DATA.configs[2], refs)
    await push_blob(client, DATA.layer, refs)
    for tag in DISCOVERY_TAGS:
        await push_manifest(client, DATA.manifests[2], refs, tag=tag)
    # References setup: the empty JSON blob, blob A, the A referrers and the index before the subject exists
    assert (DATA.empty_json.digest, DATA.empty_json.length) == (EMPTY_JSON_DIGEST, 2)
    await push_blob(client, DATA.empty_json, refs)
    await push_blob(client, DATA.ref_blob_a, refs)
    await push_manifest(client, DATA.refs_manifest_a_config, refs)
    await push_manifest(client, DATA.refs_manifest_a_layer, refs)
    await push_manifest(client, DATA.refs_index, refs, index=True)
    # then the subject itself, blob B and the B referrers, and C whose subject (manifests[3]) is never pushed
    await push_blob(client, DATA.configs[4], refs)
    await push_blob(client, DATA.layer, refs)
    await push_manifest(client, SUBJECT, refs, tag=TEST_TAG_NAME)
    await push_blob(client, DATA.ref_blob_b, refs)
    await push_manifest(client, DATA.refs_manifest_b_config, refs)
    await push_manifest(client, DATA.refs_manifest_b_layer, refs)
    await push_manifest(client, DATA.refs_manifest_c_layer, refs)
    return refs


@pytest.fixture
async def discovery_setup(client: httpx.AsyncClient) -> Refs:
    return await setup_discovery(client)


async def list_tags(client: httpx.AsyncClient, **params: str | int) -> list[str]:
    response = await client.get(f"/v2/{NAMESPACE}/tags/list", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == NAMESPACE
    tags: list[str] = body["tags"]
    return tags


async def get_referrers(client: httpx.AsyncClient, digest: str, **params: str) -> httpx.Response:
    response = await client.get(f"/v2/{NAMESPACE}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    body = response.json()
    assert (body["schemaVersion"], body["mediaType"]) == (2, OCI_INDEX)
    return response


def assert_referrer_descriptors(descriptors: list[dict[str, object]], expected: list[Content]) -> None:
    """The suite's checks (distinct digests, one annotation with the pushed value), and spec "Listing Referrers":
    ``artifactType`` from the manifest, else its config's mediaType; mediaType and size of what was pushed."""
    by_digest = {content.digest: content for content in expected}
    assert sorted(str(d["digest"]) for d in descriptors) == sorted(by_digest)
    for found in descriptors:
        digest = str(found["digest"])
        assert found["annotations"] == {ANNOTATION_KEY: DATA.annotation_values[digest]}
        assert found["artifactType"] == DATA.artifact_types[digest]
        assert found["size"] == by_digest[digest].length
        assert found["mediaType"] == (OCI_INDEX if digest == DATA.refs_index.digest else OCI_MANIFEST)


async def test_discovery_references_setup_push_with_subject_gets_oci_subject(
    client: httpx.AsyncClient, discovery_setup: Refs
) -> None:
    """Spec "Pushing Manifests with Subject": a registry that serves the referrers API MUST answer a push with a
    ``subject`` with ``OCI-Subject: <subject digest>`` (the suite also accepts no header, from registries without
    that API); pushes without a subject get no such header."""
    pushes = discovery_setup.pushes
    for referrer in REFERRERS_OF_SUBJECT:
        assert pushes[referrer.digest].headers.get("oci-subject") == SUBJECT.digest, referrer.digest
    assert pushes[DATA.refs_manifest_c_layer.digest].headers.get("oci-subject") == DATA.manifests[3].digest
    for reference in (TEST_TAG_NAME, *DISCOVERY_TAGS):
        assert "oci-subject" not in pushes[reference].headers, reference


async def test_discovery_tags_list_gets_200_in_sorted_order(client: httpx.AsyncClient, discovery_setup: Refs) -> None:
    tags = await list_tags(client)
    assert sorted(tags) == sorted([*DISCOVERY_TAGS, TEST_TAG_NAME])
    # lexical (case-insensitive) order, or "ASCIIbetical" (Go's sort.Strings) as registries historically have
    assert tags in (sorted(tags, key=str.lower), sorted(tags))


async def test_discovery_tags_list_number_limited_by_n(client: httpx.AsyncClient, discovery_setup: Refs) -> None:
    num_results = len(await list_tags(client)) // 2
    assert len(await list_tags(client, n=num_results)) == num_results


async def test_discovery_tags_list_start_set_by_last(client: httpx.AsyncClient, discovery_setup: Refs) -> None:
    all_tags = await list_tags(client)
    num_results = len(all_tags) // 2
    first_page = await list_tags(client, n=num_results)
    last = first_page[num_results - 1]
    next_page = await list_tags(client, n=num_results, last=last)
    assert len(next_page) <= num_results
    assert last not in next_page
    # spec "Listing Tags": up to n tags after <tagname>, non-inclusively
    assert next_page == all_tags[num_results : 2 * num_results]


async def test_discovery_referrers_nonexistent_digest_gets_empty_200(
    client: httpx.AsyncClient, discovery_setup: Refs
) -> None:
    response = await get_referrers(client, DATA.dummy_digest)
    assert response.json()["manifests"] == []


async def test_discovery_referrers_existing_subject_gets_200(client: httpx.AsyncClient, discovery_setup: Refs) -> None:
    """Five referrers: A and B by config mediaType, A and B by artifactType, and the index with a subject."""
    response = await get_referrers(client, SUBJECT.digest)
    manifests = response.json()["manifests"]
    assert len(manifests) == 5
    assert manifests[0]["digest"] != manifests[1]["digest"]
    assert_referrer_descriptors(manifests, REFERRERS_OF_SUBJECT)
    assert "oci-filters-applied" not in response.headers


async def test_discovery_referrers_existing_subject_with_artifact_type_filter_gets_200(
    client: httpx.AsyncClient, discovery_setup: Refs
) -> None:
    response = await get_referrers(client, SUBJECT.digest, artifactType=ARTIFACT_TYPE_A)
    manifests = response.json()["manifests"]
    if "oci-filters-applied" in response.headers:
        assert response.headers["oci-filters-applied"] == ARTIFACT_TYPE_FILTER
        assert_referrer_descriptors(manifests, [DATA.refs_manifest_a_config, DATA.refs_manifest_a_layer])
    else:  # the suite only warns: "filtering by artifact-type is not implemented"
        assert_referrer_descriptors(manifests, REFERRERS_OF_SUBJECT)


async def test_discovery_referrers_missing_subject_manifest_gets_200(
    client: httpx.AsyncClient, discovery_setup: Refs
) -> None:
    """A referrer of a manifest never pushed (refsManifestCLayerArtifact) is listed; it carries no annotations."""
    manifests = (await get_referrers(client, DATA.manifests[3].digest)).json()["manifests"]
    assert len(manifests) == 1
    assert manifests[0]["digest"] == DATA.refs_manifest_c_layer.digest
    assert manifests[0]["artifactType"] == DATA.artifact_types[DATA.refs_manifest_c_layer.digest]


@TEARDOWN_ORDERS
async def test_discovery_teardown_deletes_manifests_tags_and_blobs(
    client: httpx.AsyncClient, discovery_setup: Refs, delete_manifest_before_blobs: bool
) -> None:
    await teardown(client, discovery_setup, delete_manifest_before_blobs=delete_manifest_before_blobs)
    await assert_all_gone(client, discovery_setup)
    assert await list_tags(client) == []
    assert (await get_referrers(client, SUBJECT.digest)).json()["manifests"] == []
    assert (await get_referrers(client, DATA.manifests[3].digest)).json()["manifests"] == []


# --- Content Management ------------------------------------------------------------------------------------------


async def setup_management(client: httpx.AsyncClient) -> int:
    """Content Management / Setup: config[3], the layer, manifests[3] as ``tagtest0``; the number of tags before."""
    await push_blob(client, DATA.configs[3])
    await push_blob(client, DATA.layer)
    await push_manifest(client, DATA.manifests[3], tag=TEST_TAG_NAME)
    return len(await list_tags(client))


@pytest.fixture
async def management_setup(client: httpx.AsyncClient) -> int:
    return await setup_management(client)


def assert_deleted(response: httpx.Response, code: str) -> None:
    """202 Accepted, or 404 with ``code`` for content the registry already removed along with what referenced it
    (the suite: "should yield 202 response unless already deleted"; distribution-spec PR #478 for blobs)."""
    if response.status_code == 404:
        assert code in error_codes(response)
    else:
        assert response.status_code == 202, response.text


async def delete_tag(client: httpx.AsyncClient) -> httpx.Response:
    return await client.delete(manifest_url(TEST_TAG_NAME))


async def delete_manifest(client: httpx.AsyncClient) -> httpx.Response:
    assert (await delete_tag(client)).status_code == 202
    return await client.delete(manifest_url(DATA.manifests[3].digest))


async def delete_blob(client: httpx.AsyncClient, blob: Content) -> httpx.Response:
    assert_deleted(await delete_manifest(client), "MANIFEST_UNKNOWN")
    return await client.delete(blob_url(blob.digest))


async def test_management_delete_manifest_tag_gets_202(client: httpx.AsyncClient, management_setup: int) -> None:
    """The suite also accepts 400 UNSUPPORTED or 405 where tag deletion is disabled; it is enabled here, so spec
    "Deleting tags" requires 202, and the tag then answers 404."""
    response = await delete_tag(client)
    assert response.status_code == 202, response.text
    assert_not_found(await client.get(manifest_url(TEST_TAG_NAME)), "MANIFEST_UNKNOWN")


async def test_management_delete_manifest_by_digest_gets_202_unless_already_deleted(
    client: httpx.AsyncClient, management_setup: int
) -> None:
    assert_deleted(await delete_manifest(client), "MANIFEST_UNKNOWN")


async def test_management_get_deleted_manifest_gets_404(client: httpx.AsyncClient, management_setup: int) -> None:
    """The suite also accepts 200 where deletes are disallowed; they are enabled here."""
    assert_deleted(await delete_manifest(client), "MANIFEST_UNKNOWN")
    assert_not_found(await client.get(manifest_url(DATA.manifests[3].digest)), "MANIFEST_UNKNOWN")
    assert_not_found(await client.head(manifest_url(DATA.manifests[3].digest)), "MANIFEST_UNKNOWN")


async def test_management_tags_list_reflects_manifest_deletion(
    client: httpx.AsyncClient, management_setup: int
) -> None:
    assert management_setup == 1
    assert_deleted(await delete_manifest(client), "MANIFEST_UNKNOWN")
    response = await client.get(f"/v2/{NAMESPACE}/tags/list")
    if response.status_code == 404:  # the suite allows a repository with no tags left to be unknown
        assert "NAME_UNKNOWN" in error_codes(response)
    else:
        assert response.status_code == 200, response.text
        assert len(response.json()["tags"]) == management_setup - 1


async def test_management_delete_config_blob_gets_202(client: httpx.AsyncClient, management_setup: int) -> None:
    assert_deleted(await delete_blob(client, DATA.configs[3]), "BLOB_UNKNOWN")


async def test_management_delete_layer_blob_gets_202(client: httpx.AsyncClient, management_setup: int) -> None:
    assert_deleted(await delete_blob(client, DATA.layer), "BLOB_UNKNOWN")


async def test_management_get_deleted_blob_gets_404(client: httpx.AsyncClient, management_setup: int) -> None:
    assert_deleted(await delete_blob(client, DATA.configs[3]), "BLOB_UNKNOWN")
    assert_not_found(await client.get(blob_url(DATA.configs[3].digest)), "BLOB_UNKNOWN")
    assert_not_found(await client.head(blob_url(DATA.configs[3].digest)), "BLOB_UNKNOWN")


# --- The suite as one run (00_conformance_suite_test.go) ----------------------------------------------------------


@TEARDOWN_ORDERS
async def test_suite_workflows_run_in_order_against_one_namespace(
    client: httpx.AsyncClient, delete_manifest_before_blobs: bool
) -> None:
    """Pull, Push, Content Discovery, Content Management, in this order, in one namespace of one registry: each
    workflow tears down what it set up, and the next pushes some of the same blobs (the layer) again."""
    order = {"delete_manifest_before_blobs": delete_manifest_before_blobs}

    refs = await setup_pull(client)
    assert_manifest_response(await client.get(manifest_url(TEST_TAG_NAME)), DATA.manifests[0])
    await teardown(client, refs, **order)
    await assert_all_gone(client, refs)

    assert (await streamed_put(client)).status_code == 201
    refs = Refs()
    await push_blob(client, DATA.configs[1], refs)
    await push_blob(client, DATA.layer, refs)
    blob, last = await second_chunk(client)
    closed = await client.put(location(last), params={"digest": blob.blob.digest}, content=b"")
    assert closed.status_code == 201, closed.text
    assert (await mount(client, DATA.blob_a.digest, NAMESPACE)).status_code == 201
    await put_manifest_tags(client, refs)
    await push_manifest(client, DATA.empty_layer_manifest, refs, tag=EMPTY_LAYER_TEST_TAG)
    await teardown(client, refs, **order)
    await assert_all_gone(client, refs)

    refs = await setup_discovery(client)
    assert sorted(await list_tags(client)) == sorted([*DISCOVERY_TAGS, TEST_TAG_NAME])
    manifests = (await get_referrers(client, SUBJECT.digest)).json()["manifests"]
    assert_referrer_descriptors(manifests, REFERRERS_OF_SUBJECT)
    await teardown(client, refs, **order)
    await assert_all_gone(client, refs)

    assert await setup_management(client) == 1
    assert_deleted(await delete_blob(client, DATA.configs[3]), "BLOB_UNKNOWN")
    assert_deleted(await client.delete(blob_url(DATA.layer.digest)), "BLOB_UNKNOWN")
    assert await list_tags(client) == []
    for gone in (manifest_url(DATA.manifests[3].digest), blob_url(DATA.configs[3].digest), blob_url(DATA.layer.digest)):
        assert (await client.get(gone)).status_code == 404, gone
    # what no teardown deletes in the suite either: blobs A and B, and blob A mounted into the cross-mount namespace
    assert_blob_response(await client.get(blob_url(DATA.blob_a.digest)), DATA.blob_a)
    assert_blob_response(await client.get(blob_url(DATA.blob_b.blob.digest)), DATA.blob_b.blob)
    assert_blob_response(await client.get(blob_url(DATA.blob_a.digest, CROSSMOUNT_NAMESPACE)), DATA.blob_a)
