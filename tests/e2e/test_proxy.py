"""The pull-through cache with a real upstream: a second registry process (ours, or distribution 2.8.2 under
E2E_SERVER=distribution), with and without htpasswd auth, behind a counting reverse proxy (tests/faultproxy.py),
behind our cache. docker pulls through the cache, then the upstream stops and the same pulls still work."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faultproxy import FaultProxy

from .daemons import DockerDaemon, docker_forget, docker_push
from .images import AppImage
from .server import RegistryServer, server_kind
from .test_auth import PASSWORDS, add_users, docker_login

pytestmark = pytest.mark.e2e
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Mirror:
    def __init__(self, root: Path, auth: bool, ttl: str = "0") -> None:
        root.mkdir(parents=True)
        extra: dict[str, Any] = {}
        if auth:
            add_users(root / "htpasswd")
            extra = {"auth": {"htpasswd": {"realm": "upstream", "path": str(root / "htpasswd")}}}
        self.auth = ("alice", PASSWORDS["alice"]) if auth else None
        self.upstream = RegistryServer(root / "upstream", server_kind(), extra_config=extra)
        self.upstream.start()
        self.counter = FaultProxy(self.upstream.url)
        self.counter.start()
        proxy: dict[str, Any] = {"remoteurl": self.counter.url, "ttl": ttl}
        if auth:
            proxy |= {"username": "alice", "password": PASSWORDS["alice"]}
        self.cache = RegistryServer(root / "cache", "ours", extra_config={"proxy": proxy})
        self.cache.start()
        self.log_path, self.log_title = self.cache.log_path, "pull-through cache"

    def stop(self) -> None:
        self.cache.stop()
        self.counter.stop()
        self.upstream.stop()

    def upstream_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.upstream.url, auth=self.auth, trust_env=False, timeout=30)

    def push(self, repo: str, tag: str, layer: bytes, seed: str = "") -> tuple[str, str]:
        """A one-layer image pushed to the upstream by HTTP; its manifest's and its layer's digests."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        with self.upstream_http() as http:
            for blob in (config, layer):
                digest = "sha256:" + hashlib.sha256(blob).hexdigest()
                started = http.post(f"/v2/{repo}/blobs/uploads/")  # a session, then one PUT: distribution 2.8.2 too
                assert started.status_code == 202, started.text
                location = httpx.URL(started.headers["location"]).copy_merge_params({"digest": digest})
                pushed = http.put(location, content=blob)
                assert pushed.status_code == 201, pushed.text
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
                    "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
                }
            ).encode()
            put = http.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            assert put.status_code == 201, put.text
        return put.headers["docker-content-digest"], "sha256:" + hashlib.sha256(layer).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


@pytest.fixture(params=["anonymous", "htpasswd"])
def mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mirror]:
    built = Mirror(tmp_path / "mirror", auth=request.param == "htpasswd")
    try:
        yield built
    finally:
        built.stop()


def test_docker_pulls_through_the_cache_and_again_with_the_upstream_stopped(
    dockerd: DockerDaemon, mirror: Mirror, app_image: AppImage
) -> None:
    upstream_ref = f"{mirror.upstream.host}/e2e/app:v1"
    if mirror.auth:
        docker_login(dockerd, mirror.upstream.host, *mirror.auth)
    dockerd.run("tag", app_image.tag, upstream_ref)
    digest, _ = docker_push(dockerd, upstream_ref)
    cached = f"{mirror.cache.host}/e2e/app:v1"
    docker_forget(dockerd, upstream_ref)
    try:
        dockerd.run("pull", cached)
        assert dockerd.inspect(cached, "{{index .RepoDigests 0}}") == f"{mirror.cache.host}/e2e/app@{digest}"
        docker_forget(dockerd, cached)
        mirror.upstream.stop()
        dockerd.run("pull", cached)  # by tag: stale-if-error
        out = dockerd.run("run", "--rm", "--network", "none", cached).stdout
        assert out.split() == [app_image.blob_sha256, "/data/blob.bin"]
        dockerd.run("pull", f"{mirror.cache.host}/e2e/app@{digest}")
    finally:
        dockerd.run("rmi", "--force", cached, f"{mirror.cache.host}/e2e/app@{digest}", check=False)


def test_a_tag_moved_upstream_is_seen_after_the_ttl(mirror: Mirror) -> None:
    first, _ = mirror.push("e2e/moving", "latest", b"first layer", seed="1")
    with httpx.Client(base_url=mirror.cache.url, trust_env=False) as cache:
        accept = {"Accept": OCI_MANIFEST}
        assert cache.get("/v2/e2e/moving/manifests/latest", headers=accept).headers["docker-content-digest"] == first
        second, _ = mirror.push("e2e/moving", "latest", b"second layer", seed="2")
        moved = cache.get("/v2/e2e/moving/manifests/latest", headers=accept)  # ttl 0: revalidated by every pull
        assert moved.headers["docker-content-digest"] == second != first
        assert mirror.counter.count("HEAD", "/v2/e2e/moving/manifests/latest") >= 2


def test_ten_concurrent_pulls_of_a_cold_layer_make_one_upstream_get(mirror: Mirror) -> None:
    layer = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    _, layer_digest = mirror.push("e2e/big", "v1", layer)
    url = f"{mirror.cache.url}/v2/e2e/big/blobs/{layer_digest}"

    def pull(_: int) -> bytes:
        with httpx.Client(trust_env=False, timeout=60) as http:
            response = http.get(url)
            assert response.status_code == 200, response.text
            return response.content

    with ThreadPoolExecutor(10) as pool:
        bodies = list(pool.map(pull, range(10)))
    assert all(body == layer for body in bodies)
    assert mirror.counter.count("GET", f"/blobs/{layer_digest}") == 1


def test_a_corrupted_upstream_blob_is_refused_and_not_kept(mirror: Mirror) -> None:
    layer = hashlib.sha256(b"corrupt").digest() * (1024 * 1024 // 32)
    _, digest = mirror.push("e2e/bad", "v1", layer)
    encoded = digest.split(":")[1]
    data = mirror.upstream.root / "data" / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded / "data"
    data.write_bytes(b"X" + layer[1:])  # the upstream now serves other bytes under the digest
    with httpx.Client(trust_env=False, timeout=60) as http:
        with pytest.raises(httpx.HTTPError):  # the connection is aborted before the promised length
            http.get(f"{mirror.cache.url}/v2/e2e/bad/blobs/{digest}").raise_for_status()
        kept = mirror.cache.root / "data" / "docker/registry/v2/blobs/sha256" / encoded[:2] / encoded
        assert not kept.exists()
        mirror.upstream.stop()
        gone = http.get(f"{mirror.cache.url}/v2/e2e/bad/blobs/{digest}")
        assert gone.status_code == 503 and gone.json()["errors"][0]["code"] == "UNAVAILABLE"
