"""Test data and HTTP steps for ``tests/test_conformance.py``, a port of the OCI distribution-spec conformance suite.

The data mirrors ``conformance/setup.go`` and ``conformance/image.go`` of opencontainers/distribution-spec v1.1.x:
one config blob and one image manifest per workflow slot (``configs[i]`` / ``manifests[i]``, 16 slots as in the
suite), the gzip tarball layer, two random 42-byte blobs (A streamed, B chunked), the no-layers manifest, the empty
JSON blob ``{}`` and the referrers artifacts (A/B by config mediaType, A/B/C by ``artifactType``, an index) with their
annotations. Documents are serialised as Go's ``json.MarshalIndent(v, "", "\\t")`` would, including the suite's
``data`` (base64 of the config) and ``newUnspecifiedField`` (an unknown field, often ``null``) in descriptors.

The step helpers mirror the suite's ``pushBlob``, ``pushManifest``, ``mountBlob``, ``deleteManifests`` and
``deleteBlobs``, with the registry's configuration known here (deletes enabled): where the suite also accepts 405
(deletes disabled), the answer must be 202, and whatever was deleted must then answer 404.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

NAMESPACE = "myorg/myrepo"  # the suite's OCI_NAMESPACE (README example)
CROSSMOUNT_NAMESPACE = f"conformance-{uuid.UUID(int=0x0C1)}"  # the suite's default: conformance-<uuid>

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCTET_STREAM = "application/octet-stream"

EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
TEST_TAG_NAME = "tagtest0"  # testTagName
EMPTY_LAYER_TEST_TAG = "emptylayer"  # emptyLayerTestTag
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"  # nonexistentManifest
INVALID_MANIFEST_CONTENT = b"blablabla"  # invalidManifestContent
ARTIFACT_TYPE_FILTER = "artifactType"  # artifactTypeFilter
ANNOTATION_KEY = "org.opencontainers.conformance.test"  # testAnnotationKey
ARTIFACT_TYPE_A = "application/vnd.nhl.peanut.butter.bagel"  # testRefArtifactTypeA
ARTIFACT_TYPE_B = "application/vnd.nba.strawberry.jam.croissant"  # testRefArtifactTypeB
ARTIFACT_TYPE_INDEX = "application/vnd.food.stand"  # testRefArtifactTypeIndex

# errorCodes: the codes an OCI error body may carry (spec "Error Codes")
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
    }
)

# layerBase64String: `echo 'you bothered to find out what was in here. Congratulations!' > test.txt; tar czvf`
_LAYER_BASE64 = (
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
    "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
    "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA"
)
_NUM_WORKFLOWS = 16  # the suite's `numWorkflows` constant (1 << 4): one config and manifest per slot
_SEED = 20250101  # the suite seeds from Ginkgo's random seed; a fixed one keeps failures reproducible


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_json(doc: Any) -> bytes:
    """``json.MarshalIndent(doc, "", "\\t")``: the bytes the suite pushes (and whose digest it computes)."""
    return json.dumps(doc, indent="\t").encode()


@dataclass(frozen=True)
class Content:
    """A blob or manifest as the suite's ``TestBlob`` holds it: content, length and digest."""

    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def length(self) -> int:
        return len(self.data)


def descriptor(
    media_type: str,
    content: Content,
    *,
    data: bytes | None = None,
    unspecified: bytes | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The suite's ``descriptor`` struct: ``newUnspecifiedField`` has no omitempty, so it is ``null`` when unset."""
    out: dict[str, Any] = {"mediaType": media_type, "digest": content.digest, "size": content.length}
    if annotations:
        out["annotations"] = annotations
    if data is not None:
        out["data"] = base64.b64encode(data).decode()
    if artifact_type:
        out["artifactType"] = artifact_type
    out["newUnspecifiedField"] = None if unspecified is None else base64.b64encode(unspecified).decode()
    return out


def image_manifest(
    config: dict[str, Any],
    layers: list[dict[str, Any]],
    *,
    media_type: str | None = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Content:
    doc: dict[str, Any] = {"schemaVersion": 2}
    if media_type:
        doc["mediaType"] = media_type
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config
    doc["layers"] = layers
    if subject is not None:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return Content(go_json(doc))


def image_index(
    manifests: list[dict[str, Any]], *, artifact_type: str, subject: dict[str, Any], annotations: dict[str, str]
) -> Content:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": artifact_type,
        "manifests": manifests,
        "subject": subject,
        "annotations": annotations,
    }
    return Content(go_json(doc))


@dataclass(frozen=True)
class ChunkedBlob:
    """``testBlobB`` split as ``setupChunkedBlob`` does: the first chunk is one byte longer than half."""

    blob: Content
    chunk1: bytes
    chunk2: bytes

    @classmethod
    def of(cls, data: bytes) -> ChunkedBlob:
        cut = len(data) // 2 + 1
        return cls(Content(data), data[:cut], data[cut:])

    @property
    def chunk1_range(self) -> str:
        return f"0-{len(self.chunk1) - 1}"

    @property
    def chunk2_range(self) -> str:
        return f"{len(self.chunk1)}-{self.blob.length - 1}"


def random_blob(size: int, seed: int) -> Content:
    """``randomBlob``: reproducible random bytes from a seed."""
    return Content(random.Random(seed).randbytes(size))


@dataclass(frozen=True)
class ConformanceData:
    """Everything ``setup.go``'s ``init()`` builds."""

    configs: list[Content]
    layer: Content
    manifests: list[Content]
    empty_layer_manifest: Content
    blob_a: Content
    blob_b: ChunkedBlob
    empty_json: Content
    ref_blob_a: Content
    ref_blob_b: Content
    refs_manifest_a_config: Content
    refs_manifest_b_config: Content
    refs_manifest_a_layer: Content
    refs_manifest_b_layer: Content
    refs_manifest_c_layer: Content
    refs_index: Content
    annotation_values: dict[str, str] = field(default_factory=dict)
    artifact_types: dict[str, str] = field(default_factory=dict)
    dummy_digest: str = sha256(b"hello world")

    @property
    def empty_json_descriptor(self) -> dict[str, Any]:
        return {"mediaType": OCI_EMPTY, "digest": self.empty_json.digest, "size": self.empty_json.length}


def _random_author(rng: random.Random) -> str:
    return "".join(rng.choice(string.digits + string.ascii_letters + "-") for _ in range(16))


def _subject(manifest: Content) -> dict[str, Any]:
    return descriptor(OCI_MANIFEST, manifest)


def _plain(media_type: str, content: Content) -> dict[str, Any]:
    """A descriptor the suite writes through Go's struct with ``newUnspecifiedField`` unset (``null``)."""
    return descriptor(media_type, content)


def build_data(seed: int = _SEED) -> ConformanceData:
    rng = random.Random(seed)
    configs = []
    for _ in range(_NUM_WORKFLOWS):
        image = {
            "author": _random_author(rng),
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        configs.append(Content(go_json(image)))
    layer = Content(base64.b64decode(_LAYER_BASE64))
    layers = [_plain(OCI_LAYER_GZIP, layer)]

    def config_descriptor(config: Content) -> dict[str, Any]:
        return descriptor(OCI_CONFIG, config, data=config.data, unspecified=b"hello world")

    manifests = [image_manifest(config_descriptor(config), layers) for config in configs]
    empty_layer_manifest = image_manifest(config_descriptor(configs[1]), [], media_type=None)

    empty_json = Content(b"{}")
    empty_desc = {"mediaType": OCI_EMPTY, "digest": empty_json.digest, "size": empty_json.length}
    ref_blob_a = Content(b"NHL Peanut Butter on my NHL bagel")
    ref_blob_b = Content(b"NBA Strawberry Jam on my NBA croissant")
    subject = _subject(manifests[4])
    empty_layers = [_plain(OCI_EMPTY, empty_json)]

    def config_artifact(artifact_type: str, blob: Content, note: str) -> Content:
        config = _plain(artifact_type, blob)
        return image_manifest(config, empty_layers, subject=subject, annotations={ANNOTATION_KEY: note})

    def layer_artifact(artifact_type: str, blob: Content, subj: dict[str, Any], note: str | None) -> Content:
        return image_manifest(
            {**empty_desc, "newUnspecifiedField": None},
            [_plain(artifact_type, blob)],
            artifact_type=artifact_type,
            subject=subj,
            annotations={ANNOTATION_KEY: note} if note else None,
        )

    a_config = config_artifact(ARTIFACT_TYPE_A, ref_blob_a, "test config a")
    b_config = config_artifact(ARTIFACT_TYPE_B, ref_blob_b, "test config b")
    a_layer = layer_artifact(ARTIFACT_TYPE_A, ref_blob_a, subject, "test layer a")
    b_layer = layer_artifact(ARTIFACT_TYPE_B, ref_blob_b, subject, "test layer b")
    # refsManifestCLayerArtifact: like B, but its subject (manifests[3]) is never pushed in content discovery
    c_layer = layer_artifact(ARTIFACT_TYPE_B, ref_blob_b, _subject(manifests[3]), None)
    index = image_index(
        [_plain(OCI_MANIFEST, a_config), _plain(OCI_MANIFEST, a_layer)],
        artifact_type=ARTIFACT_TYPE_INDEX,
        subject=subject,
        annotations={ANNOTATION_KEY: "test index"},
    )
    annotations = {
        a_config.digest: "test config a",
        b_config.digest: "test config b",
        a_layer.digest: "test layer a",
        b_layer.digest: "test layer b",
        index.digest: "test index",
    }
    artifact_types = {
        a_config.digest: ARTIFACT_TYPE_A,
        b_config.digest: ARTIFACT_TYPE_B,
        a_layer.digest: ARTIFACT_TYPE_A,
        b_layer.digest: ARTIFACT_TYPE_B,
        c_layer.digest: ARTIFACT_TYPE_B,
        index.digest: ARTIFACT_TYPE_INDEX,
    }
    return ConformanceData(
        configs=configs,
        layer=layer,
        manifests=manifests,
        empty_layer_manifest=empty_layer_manifest,
        blob_a=random_blob(42, seed + 1),
        blob_b=ChunkedBlob.of(random_blob(42, seed + 2).data),
        empty_json=empty_json,
        ref_blob_a=ref_blob_a,
        ref_blob_b=ref_blob_b,
        refs_manifest_a_config=a_config,
        refs_manifest_b_config=b_config,
        refs_manifest_a_layer=a_layer,
        refs_manifest_b_layer=b_layer,
        refs_manifest_c_layer=c_layer,
        refs_index=index,
        annotation_values=annotations,
        artifact_types=artifact_types,
    )


DATA = build_data()


# --- HTTP steps ------------------------------------------------------------------------------------------------------


def relative(location: str) -> str:
    """reggie's ``GetRelativeLocation``: the path and query of a Location, absolute or not."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def location(response: httpx.Response) -> str:
    value = response.headers.get("location", "")
    assert value, f"{response.request.method} {response.request.url.path}: no Location header"
    return relative(value)


def error_codes(response: httpx.Response) -> list[str]:
    """The ``code`` of each entry of an OCI error body ``{"errors": [{"code", "message", "detail"}]}``."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    errors = response.json()["errors"]
    assert isinstance(errors, list) and errors, response.text
    return [entry["code"] for entry in errors]


def blob_url(digest: str, name: str = NAMESPACE) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_url(reference: str, name: str = NAMESPACE) -> str:
    return f"/v2/{name}/manifests/{reference}"


def uploads_url(name: str = NAMESPACE) -> str:
    return f"/v2/{name}/blobs/uploads/"


@dataclass
class Refs:
    """What a workflow pushed, in push order, for its teardown (the suite's ``blobRefs`` and ``manifestRefs``)."""

    blobs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    pushes: dict[str, httpx.Response] = field(default_factory=dict)


async def start_upload(client: httpx.AsyncClient, name: str = NAMESPACE, **kwargs: Any) -> httpx.Response:
    response = await client.post(uploads_url(name), **kwargs)
    assert response.status_code == 202, response.text
    location(response)
    return response


async def push_blob(client: httpx.AsyncClient, blob: Content, refs: Refs | None = None) -> httpx.Response:
    """``pushBlob``: POST for a session, then PUT the whole blob with its digest; 201 Created."""
    session = await client.post(uploads_url())
    assert session.status_code in (201, 202), session.text
    response = await client.put(
        location(session),
        params={"digest": blob.digest},
        headers={"Content-Type": OCTET_STREAM},
        content=blob.data,
    )
    assert response.status_code == 201, response.text
    location(response)
    if refs is not None:
        refs.blobs.append(blob.digest)
    return response


async def push_manifest(
    client: httpx.AsyncClient,
    manifest: Content,
    refs: Refs | None = None,
    *,
    tag: str | None = None,
    index: bool = False,
) -> httpx.Response:
    """``pushManifest``: PUT by tag (or digest); 201 Created with a Location. The response is kept in ``refs.pushes``
    for the ``OCI-Subject`` checks, which ``test_discovery_references_setup_push_with_subject_gets_oci_subject``
    makes (the suite makes them here, accepting an absent header from a registry without the referrers API)."""
    reference = tag or manifest.digest
    media_type = OCI_INDEX if index else OCI_MANIFEST
    response = await client.put(manifest_url(reference), headers={"Content-Type": media_type}, content=manifest.data)
    assert response.status_code == 201, response.text
    location(response)
    if refs is not None:
        refs.manifests.append(reference)
        if tag is not None:
            refs.manifests.append(manifest.digest)
        refs.pushes[reference] = response
    return response


async def delete_manifests(client: httpx.AsyncClient, refs: Refs) -> None:
    """``deleteManifests``: last pushed first; a reference that still resolves is deleted (202), then gone (404)."""
    for reference in reversed(refs.manifests):
        found = await client.get(manifest_url(reference))
        if found.status_code == 404:  # a tag whose manifest is already deleted resolves no more
            assert "MANIFEST_UNKNOWN" in error_codes(found)
            continue
        assert found.status_code == 200, found.text
        response = await client.delete(manifest_url(reference))
        assert response.status_code == 202, response.text
        gone = await client.get(manifest_url(reference))
        assert gone.status_code == 404, gone.text


async def delete_blobs(client: httpx.AsyncClient, refs: Refs) -> None:
    """``deleteBlobs``: last pushed first, each then gone (404). 202, or 404 BLOB_UNKNOWN where the registry removed
    the blob with its manifest (distribution-spec PR #478); a digest pushed twice answers 404 the second time."""
    deleted: set[str] = set()
    for digest in reversed(refs.blobs):
        response = await client.delete(blob_url(digest))
        if response.status_code == 404 or digest in deleted:
            assert response.status_code == 404, response.text
            assert "BLOB_UNKNOWN" in error_codes(response)
        else:
            assert response.status_code == 202, response.text
        deleted.add(digest)
        gone = await client.head(blob_url(digest))
        assert gone.status_code == 404


async def teardown(client: httpx.AsyncClient, refs: Refs, *, delete_manifest_before_blobs: bool) -> None:
    """A workflow's Teardown context, in either order (``OCI_DELETE_MANIFEST_BEFORE_BLOBS``, default true)."""
    if delete_manifest_before_blobs:
        await delete_manifests(client, refs)
    await delete_blobs(client, refs)
    if not delete_manifest_before_blobs:
        await delete_manifests(client, refs)
