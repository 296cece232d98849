"""Shared steps of the UI tests: a client over a started app, pushes through the API, the CSRF token of a page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.api_helpers import (
    OCI_INDEX,
    client_on,
    digest_of,
    encode,
    image_manifest,
    index_manifest,
    push_blob,
    put_manifest,
)
from tests.conftest import make_config

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def ui_client(tmp_path: Path, database_url: str | None = None, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    if database_url is not None:
        env["REGISTRY_DATABASE_URL"] = database_url
    async with client_on(make_config(tmp_path, "inmemory", **env)) as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def push_config_image(
    client: httpx.AsyncClient, name: str, tag: str | None, config: dict[str, object], layers: list[bytes]
) -> str:
    """An image whose config is ``config``; its digest."""
    config_bytes = encode(config)
    await push_blob(client, name, config_bytes)
    for layer in layers:
        await push_blob(client, name, layer)
    body = image_manifest(config_bytes, layers)
    response = await put_manifest(client, name, tag or digest_of(body), body)
    assert response.status_code == 201, response.text
    return digest_of(body)


def config_for(os: str, architecture: str, **inner: object) -> dict[str, object]:
    return {
        "os": os,
        "architecture": architecture,
        "created": "2026-01-02T03:04:05Z",
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
            {"created_by": 'CMD ["sh"]', "empty_layer": True},
        ],
    }


async def push_index(client: httpx.AsyncClient, name: str, tag: str, platforms: list[tuple[str, str]]) -> str:
    """An index of one image per platform, each pushed by digest first; the index's digest."""
    children = []
    for os, architecture in platforms:
        config = config_for(os, architecture)
        digest = await push_config_image(client, name, None, config, [f"{name} {os}/{architecture}".encode()])
        body = (await client.get(f"/v2/{name}/manifests/{digest}")).content
        children.append((body, {"os": os, "architecture": architecture}))
    body = index_manifest(children)
    response = await put_manifest(client, name, tag, body, OCI_INDEX)
    assert response.status_code == 201, response.text
    return digest_of(body)
