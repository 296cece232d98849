"""docker and skopeo against a registry whose storage is S3 (moto), with blob redirects on and off.

The registry reaches moto through ``tests/faultproxy.py`` (no faults unless a test adds some), so a test can count
what went to S3: multipart part uploads on push, and presigned GETs (a client following the registry's 307) on pull.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.faultproxy import DropRequest, ErrorReply, FaultProxy
from tests.s3server import MotoServer

from .daemons import DockerDaemon, Skopeo, docker_forget, docker_push
from .images import AppImage, build_app_image
from .server import RegistryServer, server_kind
from .test_docker import assert_runs, pull_fresh

pytestmark = pytest.mark.e2e

BIG_BLOB = 16 * 1024 * 1024  # more than the default 10 MiB chunksize: the layer goes up as a multipart upload
PRESIGNED = r"[?&]X-Amz-Signature="
UPLOAD_PART = r"[?&]partNumber="


@dataclass
class S3Registry:
    server: RegistryServer
    proxy: FaultProxy
    moto: MotoServer
    bucket: str
    redirect: bool

    @property
    def log_path(self) -> Path:
        return self.server.log_path

    @property
    def log_title(self) -> str:
        return self.server.log_title


def s3_server(root: Path, params: dict[str, Any], redirect: bool) -> RegistryServer:
    """A RegistryServer whose config.yml has ``storage.s3`` (and no filesystem section)."""
    server = RegistryServer(root, server_kind())
    server.env.pop("AWS_CA_BUNDLE", None)  # docker-registry's Go SDK refuses to start with one over plain HTTP
    assert server.config is not None
    config = yaml.safe_load(server.config.read_text())
    config["storage"] = {"s3": params, "delete": {"enabled": True}, "redirect": {"disable": not redirect}}
    server.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return server


@pytest.fixture(params=[True, False], ids=["redirect", "redirect-disabled"])
def s3_registry(request: pytest.FixtureRequest, tmp_path: Path, moto_s3: MotoServer) -> Iterator[S3Registry]:
    bucket = moto_s3.create_bucket()
    with FaultProxy(moto_s3.endpoint) as proxy:
        params = moto_s3.driver_params(bucket, regionendpoint=proxy.url)
        server = s3_server(tmp_path / "registry", params, redirect=request.param)
        try:
            server.start()
            yield S3Registry(server, proxy, moto_s3, bucket, request.param)
        finally:
            server.stop()


@pytest.fixture
def image(dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path) -> Iterator[AppImage]:
    """A fresh three-layer image whose middle layer is BIG_BLOB random bytes."""
    tag = f"e2e-local/s3-{tmp_path.name.lower()}:v1"
    built = build_app_image(dockerd, busybox_rootfs, tmp_path, tag, blob_size=BIG_BLOB)
    yield built
    dockerd.run("rmi", "--force", built.image_id, check=False)


def layers(registry: S3Registry, repo: str, reference: str) -> list[dict[str, Any]]:
    with registry.server.client() as client:
        response = client.get_manifest(repo, reference)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = json.loads(response.content)["layers"]
    return found


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_blob_served(registry: S3Registry, repo: str, layer: dict[str, Any]) -> None:
    """With redirects a blob GET is a 307 to a presigned S3 URL (through the proxy); without, the registry streams."""
    with httpx.Client(base_url=registry.server.url, timeout=60, trust_env=False) as http:
        response = http.get(f"/v2/{repo}/blobs/{layer['digest']}")
        if registry.redirect:
            assert response.status_code == 307, response.text
            location = response.headers["location"]
            assert location.startswith(registry.proxy.url + "/"), location
            response = http.get(location)
    assert response.status_code == 200, response.text
    assert len(response.content) == layer["size"]
    assert sha256_of(response.content) == layer["digest"]


def assert_pulled_from(registry: S3Registry, blobs: int) -> None:
    """Every blob a client pulled came straight from S3 with redirects, through the registry without."""
    presigned = registry.proxy.count("GET", PRESIGNED)
    assert presigned >= (blobs if registry.redirect else 0), registry.proxy.exchanges
    assert registry.redirect or presigned == 0, registry.proxy.exchanges


def test_docker_push_pull_run(dockerd: DockerDaemon, s3_registry: S3Registry, image: AppImage) -> None:
    ref = f"{s3_registry.server.host}/e2e/s3:v1"
    dockerd.run("tag", image.tag, ref)
    docker_push(dockerd, ref)
    assert s3_registry.proxy.count("PUT", UPLOAD_PART) >= 2, "the big layer was not a multipart upload"
    docker_forget(dockerd, ref, image.tag)

    pull_fresh(dockerd, ref)
    assert_pulled_from(s3_registry, blobs=3)
    assert_runs(dockerd, ref, image)
    pushed = layers(s3_registry, "e2e/s3", "v1")
    assert max(layer["size"] for layer in pushed) > BIG_BLOB
    for layer in pushed:
        assert_blob_served(s3_registry, "e2e/s3", layer)


def test_skopeo_copy_to_and_from(skopeo: Skopeo, s3_registry: S3Registry, image: AppImage, tmp_path: Path) -> None:
    repo = f"docker://{s3_registry.server.host}/e2e/sko"
    digest_file = tmp_path / "digest"
    source = f"docker-daemon:{image.tag}"
    daemon = f"--src-daemon-host={skopeo.docker_host}"
    skopeo.run(
        "copy", daemon, "--dest-tls-verify=false", "--format=oci", f"--digestfile={digest_file}", source, f"{repo}:v1"
    )
    digest = digest_file.read_text().strip()

    layout = tmp_path / "layout"
    skopeo.run("copy", "--src-tls-verify=false", f"{repo}@{digest}", f"oci:{layout}:v1")
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    assert len(blobs) == 5, blobs  # manifest, config and three layers
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert max(blob.stat().st_size for blob in blobs) > BIG_BLOB
    assert_pulled_from(s3_registry, blobs=4)


@pytest.mark.parametrize("s3_registry", [True], ids=["redirect"], indirect=True)
def test_push_rides_out_s3_errors(dockerd: DockerDaemon, s3_registry: S3Registry, image: AppImage) -> None:
    # The registry retries S3 itself: docker never sees an error, so it never has to retry a layer.
    proxy = s3_registry.proxy
    rules = [
        proxy.add(ErrorReply(503, "SlowDown"), "PUT", UPLOAD_PART),
        proxy.add(ErrorReply(500, "InternalError"), "POST", r"[?&]uploadId="),
        proxy.add(DropRequest(), "PUT", r"/docker/registry/v2/", skip=3),
    ]
    ref = f"{s3_registry.server.host}/e2e/s3:v1"
    dockerd.run("tag", image.tag, ref)
    _, out = docker_push(dockerd, ref)
    assert "Retrying" not in out, out
    assert [rule.fired for rule in rules] == [1, 1, 1]
    proxy.clear()
    docker_forget(dockerd, ref, image.tag)
    pull_fresh(dockerd, ref)
    assert_runs(dockerd, ref, image)
