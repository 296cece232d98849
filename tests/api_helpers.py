"""Shared steps for the in-process API tests: push blobs and manifests, open upload sessions, check error bodies.

Spec references are to the OCI distribution-spec v1.1 ``spec.md`` (section names and endpoint ids ``end-N``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from registry.config import Config
from tests.conftest import BASE_URL, PEER, make_config, started_client

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"
OCTET = "application/octet-stream"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
UNKNOWN_DIGEST = "sha256:" + "0" * 64
DRIVERS = ["inmemory", "filesystem"]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def path_of(url: str) -> str:
    """A Location header (absolute or relative) as a path the test client can request."""
    return url.removeprefix(BASE_URL)


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def has_api_version(response: httpx.Response) -> bool:
    """``Docker-Distribution-API-Version: registry/2.0`` is present (exactly once is checked in test_blobs)."""
    return API_VERSION in response.headers.get_list(API_VERSION_HEADER)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The status, the API version header, and ``{"errors": [{"code": code, ...}]}`` (no body at all on HEAD)."""
    assert response.status_code == status, response.text
    assert has_api_version(response)
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    body = response.json()
    assert [error["code"] for error in body["errors"]] == [code], body
    first: dict[str, Any] = body["errors"][0]
    return first


def api_config(tmp_path: Path, driver: str, **env: str) -> Config:
    return make_config(tmp_path, driver, **env)


@contextlib.asynccontextmanager
async def client_for(tmp_path: Path, driver: str, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client over a freshly started app whose config is ``api_config(tmp_path, driver, **env)``."""
    async with client_on(api_config(tmp_path, driver, **env)) as client:
        yield client


@contextlib.asynccontextmanager
async def client_on(config: Config, peer: tuple[str, int] = PEER) -> AsyncIterator[httpx.AsyncClient]:
    async with started_client(config, peer) as client:
        yield client


def app_of(client: httpx.AsyncClient) -> Starlette:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, Starlette)
    return app


# --- blobs and uploads -----------------------------------------------------------------------------------------------


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    """A monolithic single-POST push (end-4b); the blob's digest."""
    digest = digest_of(data)
    response = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


async def start_upload(client: httpx.AsyncClient, name: str) -> str:
    """POST an upload session (end-4a); the path of its Location."""
    response = await client.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    assert response.status_code == 202, response.text
    return path_of(response.headers["Location"])


async def patch_chunk(client: httpx.AsyncClient, location: str, data: bytes, start: int) -> httpx.Response:
    content_range = f"{start}-{start + len(data) - 1}"
    return await client.patch(location, content=data, headers={"Content-Range": content_range, "Content-Type": OCTET})


async def finish_upload(client: httpx.AsyncClient, location: str, digest: str, data: bytes = b"") -> httpx.Response:
    return await client.put(location, params={"digest": digest}, content=data, headers={"Content-Type": OCTET})


async def assert_created(client: httpx.AsyncClient, response: httpx.Response, name: str, data: bytes) -> None:
    """201 with the blob's Location and digest, and the blob readable there."""
    digest = digest_of(data)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert path_of(response.headers["Location"]) == f"/v2/{name}/blobs/{digest}"
    fetched = await client.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.content == data


async def blob_status(client: httpx.AsyncClient, name: str, digest: str) -> int:
    return (await client.head(f"/v2/{name}/blobs/{digest}")).status_code


async def upload_end(client: httpx.AsyncClient, location: str) -> str:
    """The ``Range`` of an upload status (end-13), which must be 204."""
    response = await client.get(location)
    assert response.status_code == 204, response.text
    return response.headers["Range"]


def blob_files(root: Path, digest: str) -> list[str]:
    """Every file under a blob's directory in distribution's layout, relative to it (filesystem driver)."""
    algorithm, encoded = digest.split(":")
    directory = root / "docker/registry/v2/blobs" / algorithm / encoded[:2] / encoded
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def filesystem_root(config: Config) -> Path | None:
    return Path(config.storage.params["rootdirectory"]) if config.storage.driver == "filesystem" else None


# --- manifests -------------------------------------------------------------------------------------------------------


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(config: bytes, layers: Iterable[bytes], media_type: str = OCI_MANIFEST, **extra: Any) -> bytes:
    docker = media_type == DOCKER_MANIFEST
    config_type, layer_type = (DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_CONFIG, OCI_LAYER)
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
        **extra,
    }
    return encode(doc)


def index_manifest(children: Iterable[tuple[bytes, dict[str, str]]], media_type: str = OCI_INDEX) -> bytes:
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    manifests = [descriptor(child_type, body, platform=platform) for body, platform in children]
    return encode({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})


async def put_manifest(
    client: httpx.AsyncClient, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return await client.put(f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type})


async def push_image(
    client: httpx.AsyncClient,
    name: str,
    reference: str,
    *,
    seed: str = "",
    media_type: str = OCI_MANIFEST,
    **extra: Any,
) -> tuple[bytes, str]:
    """Push a config, one layer and a manifest naming them; the manifest's bytes and digest."""
    config, layer = f"config {name} {seed}".encode(), f"layer {name} {seed}".encode()
    await push_blob(client, name, config)
    await push_blob(client, name, layer)
    body = image_manifest(config, [layer], media_type, **extra)
    response = await put_manifest(client, name, reference, body, media_type)
    assert response.status_code == 201, response.text
    return body, digest_of(body)


async def manifest_status(client: httpx.AsyncClient, name: str, reference: str) -> int:
    return (await client.get(f"/v2/{name}/manifests/{reference}")).status_code
