"""Immutable tags through the API, on SQLite and PostgreSQL: a protected tag can be pushed once and pushed again with
the same manifest, but never moved to another nor deleted, directly or by deleting the manifest it names (or an index
that lists it). The refusal is 409 DENIED, with a message docker and skopeo print (``denied: <message>``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import (
    OCI_INDEX,
    assert_error,
    digest_of,
    manifest_status,
    push_image,
    put_manifest,
)
from tests.conftest import make_config, started_client

IMMUTABLE = [{"repositories": ["prod/**"], "tags": ["v*"]}, {"repositories": ["frozen"]}]


@pytest.fixture
async def client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    env = {"REGISTRY_DATABASE_URL": database_url, "REGISTRY_IMMUTABLE": json.dumps(IMMUTABLE)}
    async with started_client(make_config(tmp_path, "inmemory", **env)) as started:
        yield started


async def digest_at(client: httpx.AsyncClient, repo: str, tag: str) -> str:
    response = await client.head(f"/v2/{repo}/manifests/{tag}")
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


def assert_immutable(response: httpx.Response, repo: str, tag: str, rule: str) -> None:
    error = assert_error(response, 409, "DENIED")
    assert error["message"] == f"tag {tag} in {repo} is immutable (immutable rule: {rule})"
    assert error["detail"]["repository"] == repo and error["detail"]["tag"] == tag


async def test_moving_an_immutable_tag_is_refused(client: httpx.AsyncClient) -> None:
    _, first = await push_image(client, "prod/app", "v1", seed="one")
    other, _ = await push_image(client, "prod/app", "latest", seed="two")
    response = await put_manifest(client, "prod/app", "v1", other)
    assert_immutable(response, "prod/app", "v1", "repositories prod/**; tags v*")
    assert await digest_at(client, "prod/app", "v1") == first


async def test_pushing_the_same_manifest_again_is_allowed(client: httpx.AsyncClient) -> None:
    body, digest = await push_image(client, "prod/team/app", "v1.0")
    response = await put_manifest(client, "prod/team/app", "v1.0", body)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert await digest_at(client, "prod/team/app", "v1.0") == digest


async def test_tags_and_repositories_no_rule_names_stay_mutable(client: httpx.AsyncClient) -> None:
    await push_image(client, "prod/app", "latest", seed="one")
    _, moved = await push_image(client, "prod/app", "latest", seed="two")  # tags v* only
    assert await digest_at(client, "prod/app", "latest") == moved
    await push_image(client, "dev/app", "v1", seed="one")
    _, moved = await push_image(client, "dev/app", "v1", seed="two")  # prod/** only
    assert await digest_at(client, "dev/app", "v1") == moved
    assert (await client.delete("/v2/dev/app/manifests/v1")).status_code == 202


async def test_a_rule_without_tags_protects_every_tag(client: httpx.AsyncClient) -> None:
    await push_image(client, "frozen", "anything", seed="one")
    other, _ = await push_image(client, "frozen", "other", seed="two")
    assert_immutable(
        await put_manifest(client, "frozen", "anything", other), "frozen", "anything", "repositories frozen; tags *"
    )


async def test_deleting_an_immutable_tag_is_refused(client: httpx.AsyncClient) -> None:
    await push_image(client, "prod/app", "v2")
    assert_immutable(
        await client.delete("/v2/prod/app/manifests/v2"), "prod/app", "v2", "repositories prod/**; tags v*"
    )
    assert await manifest_status(client, "prod/app", "v2") == 200
    assert_error(await client.delete("/v2/prod/app/manifests/v3"), 404, "MANIFEST_UNKNOWN")  # none to protect


async def test_deleting_the_manifest_an_immutable_tag_names_is_refused(client: httpx.AsyncClient) -> None:
    _, digest = await push_image(client, "prod/app", "v1")
    await push_image(client, "prod/app", "untagged-but-mutable", seed="other")
    assert_immutable(
        await client.delete(f"/v2/prod/app/manifests/{digest}"), "prod/app", "v1", "repositories prod/**; tags v*"
    )
    assert await manifest_status(client, "prod/app", digest) == 200
    _, mutable = await push_image(client, "prod/app", "dev", seed="free")
    assert (await client.delete(f"/v2/prod/app/manifests/{mutable}")).status_code == 202


async def test_deleting_a_child_of_an_immutable_index_is_refused(client: httpx.AsyncClient) -> None:
    child, child_digest = await push_image(client, "prod/app", "build")
    assert (await client.delete("/v2/prod/app/manifests/build")).status_code == 202  # untagged now
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest_of(child),
                    "size": len(child),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    assert (await put_manifest(client, "prod/app", "v5", index, OCI_INDEX)).status_code == 201
    response = await client.delete(f"/v2/prod/app/manifests/{child_digest}")
    assert_immutable(response, "prod/app", "v5", "repositories prod/**; tags v*")
    assert await manifest_status(client, "prod/app", child_digest) == 200
