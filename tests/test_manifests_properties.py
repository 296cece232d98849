"""Any manifest bytes either parse or give the spec's error code, never another exception (hypothesis).

distribution-spec spec.md "Pushing Manifests": a manifest the registry cannot accept is answered with
``MANIFEST_INVALID`` (or ``MANIFEST_BLOB_UNKNOWN`` for what it names and lacks; distribution answers
``DIGEST_INVALID`` for a malformed descriptor digest), all 400; "Error Codes". Never a 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.digests import Digest
from registry.errors import ErrorCode, RegistryError
from registry.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_SCHEMA1,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)
from tests.api_helpers import client_on, push_blob
from tests.conftest import make_config

REPO = "prop/manifests"
CONFIG, LAYER = b'{"architecture":"amd64","os":"linux"}', b"layer bytes"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PARSE_ERRORS = {ErrorCode.MANIFEST_INVALID, ErrorCode.DIGEST_INVALID}


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data), **extra}


IMAGE = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "config": _descriptor(OCI_CONFIG, CONFIG),
    "layers": [_descriptor(OCI_LAYER, LAYER, annotations={"org.opencontainers.image.title": "x"})],
    "annotations": {"a": "b"},
}
ARTIFACT = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "artifactType": "application/vnd.example+type",
    "config": _descriptor(OCI_EMPTY, b"{}"),
    "layers": [_descriptor(OCI_LAYER, LAYER)],
    "subject": _descriptor(OCI_MANIFEST, b"someone"),
}
INDEX = {
    "schemaVersion": 2,
    "mediaType": OCI_INDEX,
    "manifests": [
        _descriptor(OCI_MANIFEST, json.dumps(IMAGE).encode(), platform={"os": "linux", "architecture": "amd64"})
    ],
}
DOCKER = {**IMAGE, "mediaType": DOCKER_MANIFEST}
VALID = [IMAGE, ARTIFACT, INDEX, DOCKER]

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1, "application/json"]
    ),
    st.text(max_size=30),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=16,
)
# values a field of a manifest may hold by mistake or by malice
NEAR = st.one_of(
    JSON,
    st.sampled_from(
        [
            -1,
            2**63,
            2**64,
            "1",
            True,
            1.0,
            1e308,
            "9" * 5000,
            "sha256:" + "0" * 63,
            "sha256:" + "G" * 64,
            "sha512:" + "a" * 64,
            "md5:" + "a" * 32,
            "sha256:" + "a" * 64 + "\u0000",
            "a/b\u0000",
            "\ud800",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            1,
            3,
            [],
            {},
        ]
    ),
)


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON document (the root included)."""
    found = [here]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*here, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*here, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid manifest with a few fields deleted, replaced or added, serialised in one of several ways."""
    doc = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        *parents, last = path
        node = doc
        for key in parents:
            node = node[key]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del node[last]
        elif action == "replace":
            node[last] = draw(NEAR)
        elif isinstance(node, dict):
            node[draw(st.text(max_size=10))] = draw(NEAR)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def byte_edits(draw: st.DrawFn) -> bytes:
    """A valid manifest's bytes with a few bytes flipped, cut or inserted (duplicate keys, broken UTF-8...)."""
    body = bytearray(json.dumps(draw(st.sampled_from(VALID))).encode())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "insert":
            body[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "cut":
            del body[position : position + draw(st.integers(1, 16))]
        elif position < len(body):
            body[position] ^= draw(st.integers(1, 255))
    return bytes(body)


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda doc: json.dumps(doc).encode()),
    mutated(),
    byte_edits(),
    st.sampled_from([json.dumps(doc).encode() for doc in VALID]),
    st.integers(1, 50_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 50_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


@settings(max_examples=300, deadline=None)
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_any_bytes_parse_or_give_the_spec_s_error(body: bytes, content_type: str | None) -> None:
    try:
        parsed = parse_manifest(body, content_type)
    except RegistryError as error:
        assert error.code in PARSE_ERRORS and error.status == 400, error
        json.dumps(error.detail)  # the detail can be written as the error body
        return
    assert parsed.digest == str(Digest.of(body)) and parsed.size == len(body)


# --- through the app: PUT /v2/<name>/manifests/<reference> ---

PUT_CODES = {"MANIFEST_INVALID", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"}
REFERENCES = st.one_of(st.just("latest"), st.sampled_from(["v1", "sha256:" + "a" * 64, "sha256:" + "0" * 63]))


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One registry for every example (on SQLite and PostgreSQL), holding the blobs the valid manifests name."""
    async with client_on(make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=database_url)) as client:
        for blob in (CONFIG, LAYER, json.dumps(IMAGE).encode()):
            await push_blob(client, REPO, blob)
        yield client


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES, reference=REFERENCES)
async def test_a_put_manifest_is_created_or_a_spec_error_never_a_500(
    api: httpx.AsyncClient, body: bytes, content_type: str | None, reference: str
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type.encode("utf-8", "surrogatepass")}
    response = await api.put(f"/v2/{REPO}/manifests/{reference}", content=body, headers=headers)
    if response.status_code == 201:
        assert response.headers["docker-content-digest"] == str(Digest.of(body))
        return
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] in PUT_CODES, error


async def test_a_valid_manifest_of_each_kind_is_created(api: httpx.AsyncClient) -> None:
    """The seeds above are valid, so that their mutations start from something the registry accepts."""
    for doc in (IMAGE, DOCKER, ARTIFACT):
        response = await api.put(f"/v2/{REPO}/manifests/latest", content=json.dumps(doc).encode())
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("key", ["layers", "manifests"])
async def test_a_manifest_naming_more_digests_than_a_statement_binds_is_answered(
    api: httpx.AsyncClient, key: str
) -> None:
    """Under the 4 MiB cap a manifest can name 33,000 digests, more than asyncpg binds in one statement: the check
    that they exist was a 500 on PostgreSQL; it asks in chunks."""
    named = [_descriptor("a/b", str(i).encode()) for i in range(33_000)]
    doc = {**IMAGE, "layers": named} if key == "layers" else {**INDEX, "manifests": named}
    body = json.dumps(doc, separators=(",", ":")).encode()
    response = await api.put(f"/v2/{REPO}/manifests/big", content=body)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
