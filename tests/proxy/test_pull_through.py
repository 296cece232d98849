"""The pull-through cache in process: distribution's ``proxy`` section (the whole registry mirrors the upstream)
and ours (``proxies``: upstreams under prefixes), against an upstream registry of ours."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from registry.proxy import cache
from registry.proxy.flight import BlobFlightFailed
from tests.api_helpers import (
    assert_error,
    digest_of,
    encode,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)
from tests.proxy.harness import UPSTREAM_URL, mirror

MIRROR = {"REGISTRY_PROXY_REMOTEURL": UPSTREAM_URL}
PREFIXED = {"REGISTRY_PROXIES_HUB_REMOTEURL": UPSTREAM_URL, "REGISTRY_PROXIES_HUB_NAMESPACE": "upstream.test"}


async def test_a_pull_through_the_cache_gets_the_upstreams_image_and_keeps_it(
    tmp_path: Path, database_url: str
) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, upstream):
        body, digest = await push_image(upstream_client, "library/app", "v1")
        layer = b"layer library/app "
        response = await client.get("/v2/library/app/manifests/v1")
        assert response.status_code == 200, response.text
        assert response.content == body
        assert response.headers["Docker-Content-Digest"] == digest
        blob = await client.get(f"/v2/library/app/blobs/{digest_of(layer)}")
        assert blob.status_code == 200 and blob.content == layer
        upstream.down = True  # stale-if-error: what was kept is served
        assert (await client.get("/v2/library/app/manifests/v1")).content == body
        assert (await client.get(f"/v2/library/app/manifests/{digest}")).content == body
        assert (await client.get(f"/v2/library/app/blobs/{digest_of(layer)}")).content == layer
        never = await client.get(f"/v2/library/app/blobs/{digest_of(b'config library/app ')}")
        assert_error(never, 503, "UNAVAILABLE")
        assert_error(await client.get("/v2/library/other/manifests/v1"), 503, "UNAVAILABLE")


async def test_what_the_upstream_lacks_is_its_own_error(tmp_path: Path, database_url: str) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, _):
        await push_image(upstream_client, "library/app", "v1")
        assert_error(await client.get("/v2/library/app/manifests/nope"), 404, "MANIFEST_UNKNOWN")
        assert_error(await client.get("/v2/library/app/blobs/sha256:" + "0" * 64), 404, "BLOB_UNKNOWN")
        assert_error(await client.get("/v2/library/app/manifests/sha256:" + "1" * 64), 404, "MANIFEST_UNKNOWN")


async def test_pushes_into_a_mirror_are_unsupported_as_in_distribution(tmp_path: Path, database_url: str) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (_, client, _):
        response = await client.post("/v2/library/app/blobs/uploads/")
        assert_error(response, 405, "UNSUPPORTED")
        body = image_manifest(b"c", [b"l"])
        assert_error(await put_manifest(client, "library/app", "v1", body), 405, "UNSUPPORTED")
        assert_error(await client.delete("/v2/library/app/manifests/v1"), 405, "UNSUPPORTED")


async def test_a_tag_moved_upstream_is_seen_once_its_ttl_has_passed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock[0])
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR, REGISTRY_PROXY_TTL="10m") as (
        upstream_client,
        client,
        upstream,
    ):
        first, first_digest = await push_image(upstream_client, "library/app", "latest", seed="1")
        assert (await client.get("/v2/library/app/manifests/latest")).content == first
        second, second_digest = await push_image(upstream_client, "library/app", "latest", seed="2")
        heads = upstream.seen[("HEAD", "/v2/library/app/manifests/latest")]
        assert (await client.get("/v2/library/app/manifests/latest")).content == first  # within the ttl: no question
        assert upstream.seen[("HEAD", "/v2/library/app/manifests/latest")] == heads
        clock[0] += 601
        moved = await client.get("/v2/library/app/manifests/latest")
        assert moved.headers["Docker-Content-Digest"] == second_digest != first_digest
        assert moved.content == second
        assert upstream.seen[("HEAD", "/v2/library/app/manifests/latest")] == heads + 1


async def test_an_unchanged_tag_costs_a_head_and_no_get(tmp_path: Path, database_url: str) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (
        upstream_client,
        client,
        upstream,
    ):  # ttl 0: every pull asks
        body, digest = await push_image(upstream_client, "library/app", "v1")
        for _ in range(3):
            assert (await client.get("/v2/library/app/manifests/v1")).content == body
        assert upstream.seen[("HEAD", "/v2/library/app/manifests/v1")] == 3
        assert upstream.gets(f"/v2/library/app/manifests/{digest}") + upstream.gets("/v2/library/app/manifests/v1") == 1


async def test_ten_concurrent_pulls_of_a_cold_layer_make_one_upstream_get(tmp_path: Path, database_url: str) -> None:
    layer = bytes(range(256)) * 40_000  # 10 MB: several pieces
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, upstream):
        digest = await push_blob(upstream_client, "library/app", layer)
        responses = await asyncio.gather(*(client.get(f"/v2/library/app/blobs/{digest}") for _ in range(10)))
        assert [r.status_code for r in responses] == [200] * 10
        assert all(r.content == layer for r in responses)
        assert upstream.gets(f"/v2/library/app/blobs/{digest}") == 1
        assert (await client.get(f"/v2/library/app/blobs/{digest}")).content == layer
        assert upstream.gets(f"/v2/library/app/blobs/{digest}") == 1


async def test_a_corrupt_upstream_blob_is_refused_and_not_kept(tmp_path: Path, database_url: str) -> None:
    layer = b"a layer the upstream corrupts" * 1000
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, upstream):
        digest = await push_blob(upstream_client, "library/app", layer)
        upstream.corrupt.add(digest)
        with pytest.raises(BlobFlightFailed):  # the body fails: over a socket, the connection is aborted
            await client.get(f"/v2/library/app/blobs/{digest}")
        upstream.down = True
        assert_error(await client.get(f"/v2/library/app/blobs/{digest}"), 503, "UNAVAILABLE")  # nothing was kept
        upstream.down = False
        upstream.corrupt.clear()
        assert (await client.get(f"/v2/library/app/blobs/{digest}")).content == layer


async def test_a_range_of_a_cold_blob_is_served_once_it_is_kept(tmp_path: Path, database_url: str) -> None:
    layer = b"0123456789" * 100
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, _):
        digest = await push_blob(upstream_client, "library/app", layer)
        response = await client.get(f"/v2/library/app/blobs/{digest}", headers={"Range": "bytes=10-19"})
        assert response.status_code == 206 and response.content == layer[10:20]
        head = await client.head(f"/v2/library/app/blobs/sha256:{'2' * 64}")
        assert head.status_code == 404


async def test_prefixed_upstreams_mirror_their_namespace_and_the_rest_takes_pushes(
    tmp_path: Path, database_url: str
) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **PREFIXED) as (upstream_client, client, _):
        body, digest = await push_image(upstream_client, "library/app", "v1")
        response = await client.get("/v2/hub/library/app/manifests/v1")
        assert response.status_code == 200 and response.content == body
        assert_error(await client.post("/v2/hub/library/app/blobs/uploads/"), 405, "UNSUPPORTED")
        local, _ = await push_image(client, "team/app", "v1")  # outside every prefix: a repository like any other
        assert (await client.get("/v2/team/app/manifests/v1")).content == local
        assert_error(await client.get("/v2/hub/manifests/v1"), 404, "MANIFEST_UNKNOWN")  # the prefix alone: local


async def test_the_ns_query_parameter_names_the_upstream(tmp_path: Path, database_url: str) -> None:
    """spec.md "Registry Proxying": ``ns`` is the source host; OCI-Namespace echoes the one we used."""
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **PREFIXED) as (upstream_client, client, _):
        body, _ = await push_image(upstream_client, "library/app", "v1")
        response = await client.get("/v2/library/app/manifests/v1", params={"ns": "upstream.test"})
        assert response.status_code == 200 and response.content == body
        assert response.headers["OCI-Namespace"] == "upstream.test"
        kept = await client.get("/v2/hub/library/app/manifests/v1")  # kept under the prefix
        assert kept.content == body
        ignored = await client.get("/v2/library/app/manifests/v1", params={"ns": "elsewhere.test"})
        assert_error(ignored, 404, "MANIFEST_UNKNOWN")
        assert "OCI-Namespace" not in ignored.headers


async def test_an_index_and_its_children_come_through_and_are_referenced(tmp_path: Path, database_url: str) -> None:
    async with mirror(tmp_path, REGISTRY_DATABASE_URL=database_url, **MIRROR) as (upstream_client, client, upstream):
        child, child_digest = await push_image(upstream_client, "library/app", child_tag := "amd64")
        index = encode(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": child_digest,
                        "size": len(child),
                        "platform": {"os": "linux", "architecture": "amd64"},
                    }
                ],
            }
        )
        response = await put_manifest(
            upstream_client, "library/app", "multi", index, "application/vnd.oci.image.index.v1+json"
        )
        assert response.status_code == 201, response.text
        got = await client.get(
            "/v2/library/app/manifests/multi", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )
        assert got.status_code == 200 and got.content == child  # a client without index support: the amd64 child
        assert child_tag
        upstream.down = True
        again = await client.get(
            "/v2/library/app/manifests/multi", headers={"Accept": "application/vnd.oci.image.index.v1+json"}
        )
        assert again.content == index
