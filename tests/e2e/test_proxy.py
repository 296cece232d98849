"""The pull-through cache with a real upstream: a second registry process (ours, or distribution 2.8.2 under
E2E_SERVER=distribution), with and without htpasswd auth (and ours with its token service: docker's Bearer flow),
behind a counting reverse proxy (tests/faultproxy.py), behind our cache. docker pulls through the cache, then the
upstream stops and the same pulls still work."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faultproxy import FaultProxy

from .daemons import DockerDaemon, docker_forget, docker_push
from .images import AppImage
from .server import RegistryServer, needs_our_server, server_kind
from .test_auth import PASSWORDS, auth_config, docker_login

pytestmark = pytest.mark.e2e
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class TokenAuth(httpx.Auth):
    """docker's token flow: the 401 names the token service, the service and the scope; a token from there, asked
    with Basic credentials, goes on the request again as a Bearer."""

    requires_response_body = True

    def __init__(self, user: str, password: str) -> None:
        self.basic = httpx.BasicAuth(user, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = dict(re.findall(r'(\w+)="([^"]*)"', response.headers["www-authenticate"]))
        params = {key: challenge[key] for key in ("service", "scope") if key in challenge}
        asked = yield next(self.basic.auth_flow(httpx.Request("GET", challenge["realm"], params=params)))
        request.headers["Authorization"] = f"Bearer {asked.json()['token']}"
        yield request


class Mirror:
    def __init__(self, root: Path, mode: str, ttl: str = "0") -> None:
        """``mode``: the upstream's auth, ``anonymous``, ``htpasswd`` or ``token``."""
        root.mkdir(parents=True)
        extra: dict[str, Any] = {} if mode == "anonymous" else auth_config(mode, root)
        auth = self.auth = None if mode == "anonymous" else ("alice", PASSWORDS["alice"])
        self.http_auth: httpx.Auth | None = TokenAuth(*auth) if auth and mode == "token" else None
        self.http_auth = self.http_auth or (httpx.BasicAuth(*auth) if auth else None)
        self.upstream = RegistryServer(root / "upstream", server_kind(), extra_config=extra)
        self.upstream.start()
        self.counter = FaultProxy(self.upstream.url)
        self.counter.start()
        proxy: dict[str, Any] = {"remoteurl": self.counter.url, "ttl": ttl}
        if auth:
            proxy |= {"username": auth[0], "password": auth[1]}
        self.cache = RegistryServer(root / "cache", "ours", extra_config={"proxy": proxy})
        self.cache.start()
        self.log_path, self.log_title = self.cache.log_path, "pull-through cache"

    def stop(self) -> None:
        self.cache.stop()
        self.counter.stop()
        self.upstream.stop()

    def upstream_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.upstream.url, auth=self.http_auth, trust_env=False, timeout=30)

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
    built = Mirror(tmp_path / "mirror", request.param)
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
        # the session's image: other tests' registries may have added their own digests to it first
        assert f'"{mirror.cache.host}/e2e/app@{digest}"' in dockerd.inspect(cached, "{{json .RepoDigests}}")
        docker_forget(dockerd, cached)
        mirror.upstream.stop()
        dockerd.run("pull", cached)  # by tag: stale-if-error
        out = dockerd.run("run", "--rm", "--network", "none", cached).stdout
        assert out.split() == [app_image.blob_sha256, "/data/blob.bin"]
        dockerd.run("pull", f"{mirror.cache.host}/e2e/app@{digest}")
    finally:
        dockerd.run("rmi", "--force", cached, f"{mirror.cache.host}/e2e/app@{digest}", check=False)


@needs_our_server("the built-in token service, as the upstream")
def test_the_cache_logs_in_to_a_token_upstream_with_dockers_bearer_flow(tmp_path: Path) -> None:
    """The upstream answers 401 with a Bearer challenge (as Docker Hub and ghcr.io do): the cache asks its token
    service with the configured credentials, and serves what only a token could read, then serves it again with the
    upstream stopped."""
    mirror = Mirror(tmp_path / "mirror", "token")
    try:
        with httpx.Client(base_url=mirror.upstream.url, trust_env=False) as anonymous:
            challenge = anonymous.get("/v2/e2e/signed/manifests/v1")
            assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Bearer ")
        digest, layer = mirror.push("e2e/signed", "v1", b"a layer behind a token service")
        with httpx.Client(base_url=mirror.cache.url, trust_env=False) as cache:
            for _ in range(2):
                manifest = cache.get("/v2/e2e/signed/manifests/v1", headers={"Accept": OCI_MANIFEST})
                assert manifest.headers["docker-content-digest"] == digest
                assert cache.get(f"/v2/e2e/signed/blobs/{layer}").content == b"a layer behind a token service"
                mirror.upstream.stop()
    finally:
        mirror.stop()


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
