"""``PUT /v2/<name>/manifests/<digest>?tag=a&tag=b``: one manifest pushed under several tags (distribution-spec main
branch, after v1.1.1: spec.md "Pushing Manifests", end-7b), on SQLite and PostgreSQL.

"When pushing a manifest by digest, the registry MAY support the pushing of tags specified by addition of ``tag``
query parameters. If a registry supports this, it: SHOULD support pushing at least 10 tags per request; MAY return a
``414 Request-URI Too Long`` status if too many tags are included in the request; MUST include an ``OCI-Tag`` response
header ... for each accepted tag."
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from registry.content.manifests import MAX_TAG_PARAMS
from registry.db.models import gc_manifest_reviews, manifests
from tests.api_helpers import (
    OCI_MANIFEST,
    app_of,
    assert_error,
    digest_of,
    image_manifest,
    manifest_status,
    push_blob,
)
from tests.conftest import make_config, started_client


async def push_by_digest(
    client: httpx.AsyncClient, name: str, body: bytes, tags: list[str], digest: str | None = None
) -> httpx.Response:
    url = f"/v2/{name}/manifests/{digest or digest_of(body)}"
    params = [("tag", tag) for tag in tags]
    return await client.put(url, params=params, content=body, headers={"Content-Type": OCI_MANIFEST})


async def image(client: httpx.AsyncClient, name: str, seed: str = "") -> bytes:
    config = f"config {seed}".encode()
    await push_blob(client, name, config)
    return image_manifest(config, [])


async def tag_list(client: httpx.AsyncClient, name: str) -> list[str]:
    response = await client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 200, response.text
    tags: list[str] = response.json()["tags"]
    return tags


async def digest_at(client: httpx.AsyncClient, name: str, tag: str) -> str:
    response = await client.head(f"/v2/{name}/manifests/{tag}")
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


def oci_tags(response: httpx.Response) -> list[str]:
    """Every tag the ``OCI-Tag`` lines name, as RFC 9110 section 5 reads repeated lines (one comma-separated list)."""
    return [tag.strip() for line in response.headers.get_list("OCI-Tag") for tag in line.split(",")]


async def test_pushing_manifests_at_least_10_tags_each_in_an_oci_tag_header(client: httpx.AsyncClient) -> None:
    body = await image(client, "multi")
    tags = [f"v1.{i}" for i in range(12)] + ["latest"]
    response = await push_by_digest(client, "multi", body, tags)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    assert oci_tags(response) == tags
    assert await tag_list(client, "multi") == sorted(tags)
    for tag in tags:
        assert await digest_at(client, "multi", tag) == digest_of(body)


async def test_pushing_manifests_repeated_tag_parameter_is_applied_once(client: httpx.AsyncClient) -> None:
    body = await image(client, "multi")
    response = await push_by_digest(client, "multi", body, ["a", "b", "a"])
    assert response.status_code == 201, response.text
    assert oci_tags(response) == ["a", "b"]


async def test_pushing_manifests_414_request_uri_too_long_past_the_limit(client: httpx.AsyncClient) -> None:
    body = await image(client, "multi")
    response = await push_by_digest(client, "multi", body, [f"t{i}" for i in range(MAX_TAG_PARAMS + 1)])
    assert_error(response, 414, "TAG_INVALID")
    assert await manifest_status(client, "multi", digest_of(body)) == 404
    accepted = await push_by_digest(client, "multi", body, [f"t{i}" for i in range(MAX_TAG_PARAMS)])
    assert accepted.status_code == 201, accepted.text
    assert len(oci_tags(accepted)) == MAX_TAG_PARAMS


@pytest.mark.parametrize("bad", ["-bad", "a" * 129, "bad+tag"])
async def test_pushing_manifests_tag_parameters_are_tags_or_nothing_is_stored(
    client: httpx.AsyncClient, bad: str
) -> None:
    # spec.md "Pulling manifests": a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; one bad tag refuses the push
    body = await image(client, "multi")
    response = await push_by_digest(client, "multi", body, ["good", bad])
    assert_error(response, 400, "TAG_INVALID")
    assert await manifest_status(client, "multi", digest_of(body)) == 404
    assert await tag_list(client, "multi") == []


async def test_pushing_manifests_tag_parameters_only_with_a_push_by_digest(client: httpx.AsyncClient) -> None:
    # "When pushing a manifest by digest, the registry MAY support ... tag query parameters"
    body = await image(client, "multi")
    response = await client.put(
        "/v2/multi/manifests/v1", params={"tag": "v2"}, content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "TAG_INVALID")
    assert await tag_list(client, "multi") == []


async def test_pushing_manifests_tag_parameters_with_a_sha512_digest(client: httpx.AsyncClient) -> None:
    body = await image(client, "multi")
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    response = await push_by_digest(client, "multi", body, ["a", "b"], digest=sha512)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == sha512
    assert oci_tags(response) == ["a", "b"]
    fetched = await client.get("/v2/multi/manifests/b")
    assert fetched.headers["Docker-Content-Digest"] == sha512
    assert fetched.content == body


@pytest.fixture
async def quiet_client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """No collector running: what a push queues for review stays in the queue for the test to read."""
    env = {
        "REGISTRY_DATABASE_URL": database_url,
        "REGISTRY_STORAGE_GC_ENABLED": "false",
        "REGISTRY_IMMUTABLE": json.dumps([{"repositories": ["multi"], "tags": ["v*"]}]),
    }
    async with started_client(make_config(tmp_path, "inmemory", **env)) as started:
        yield started


async def queued_reviews(client: httpx.AsyncClient) -> dict[str, str]:
    """The manifests queued for the collector's review: digest -> event."""
    query = select(manifests.c.digest, gc_manifest_reviews.c.event).join(
        manifests, manifests.c.id == gc_manifest_reviews.c.manifest_id
    )
    async with app_of(client).state.services.db.read() as session:
        return {row.digest: row.event for row in await session.execute(query)}


async def test_pushing_manifests_every_tag_moved_queues_what_it_named(quiet_client: httpx.AsyncClient) -> None:
    client = quiet_client
    first, second = await image(client, "multi", "one"), await image(client, "multi", "two")
    assert (await push_by_digest(client, "multi", first, ["a", "b"])).status_code == 201
    assert await queued_reviews(client) == {}
    response = await push_by_digest(client, "multi", second, ["a", "b", "c"])
    assert response.status_code == 201, response.text
    assert await queued_reviews(client) == {digest_of(first): "tag_moved"}
    for tag in ["a", "b", "c"]:
        assert await digest_at(client, "multi", tag) == digest_of(second)


async def test_pushing_manifests_an_immutable_tag_refuses_the_whole_push(quiet_client: httpx.AsyncClient) -> None:
    client = quiet_client
    first, second = await image(client, "multi", "one"), await image(client, "multi", "two")
    assert (await push_by_digest(client, "multi", first, ["v1"])).status_code == 201
    response = await push_by_digest(client, "multi", second, ["latest", "v1"])
    assert_error(response, 409, "DENIED")
    assert await tag_list(client, "multi") == ["v1"]
    assert await manifest_status(client, "multi", digest_of(second)) == 404
    again = await push_by_digest(client, "multi", first, ["v1", "latest"])  # the same manifest again is fine
    assert oci_tags(again) == ["v1", "latest"]
