"""docker build/push/pull/run against the registry under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemons import DockerDaemon, docker_forget, docker_push, layer_statuses
from .images import AppImage, build_app_image
from .server import RegistryServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def image(dockerd: DockerDaemon, busybox_rootfs: Path, tmp_path: Path) -> Iterator[AppImage]:
    """A freshly built image whose three layers no other image in the daemon shares."""
    built = build_app_image(dockerd, busybox_rootfs, tmp_path, f"e2e-local/docker-{tmp_path.name.lower()}:v1")
    yield built
    dockerd.run("rmi", "--force", built.image_id, check=False)


def push_as(dockerd: DockerDaemon, image: AppImage, ref: str) -> str:
    dockerd.run("tag", image.tag, ref)
    digest, _ = docker_push(dockerd, ref)
    return digest


def assert_runs(dockerd: DockerDaemon, ref: str, image: AppImage) -> None:
    out = dockerd.run("run", "--rm", "--network", "none", ref).stdout
    assert out.split() == [image.blob_sha256, "/data/blob.bin"], f"{ref} printed {out!r}"


def pull_fresh(dockerd: DockerDaemon, ref: str) -> str:
    """`docker pull` an image none of whose layers is local; every layer must be downloaded."""
    out = dockerd.run("pull", ref).stdout
    statuses = layer_statuses(out)
    assert len(statuses) == 3 and all(s == "Pull complete" for s in statuses.values()), f"pull of {ref}:\n{out}"
    return out


def test_push_pull_run(dockerd: DockerDaemon, registry_server: RegistryServer, image: AppImage) -> None:
    ref = f"{registry_server.host}/e2e/app:v1"
    digest = push_as(dockerd, image, ref)
    docker_forget(dockerd, ref, image.tag)

    pull_fresh(dockerd, ref)
    assert dockerd.inspect(ref, "{{.Id}}") == image.image_id
    assert dockerd.inspect(ref, "{{index .RepoDigests 0}}") == f"{registry_server.host}/e2e/app@{digest}"
    assert_runs(dockerd, ref, image)


def test_pull_by_digest(dockerd: DockerDaemon, registry_server: RegistryServer, image: AppImage) -> None:
    ref = f"{registry_server.host}/e2e/app:v1"
    digest = push_as(dockerd, image, ref)
    docker_forget(dockerd, ref, image.tag)

    by_digest = f"{registry_server.host}/e2e/app@{digest}"
    out = pull_fresh(dockerd, by_digest)
    assert f"Digest: {digest}" in out, out
    assert dockerd.inspect(by_digest, "{{.Id}}") == image.image_id
    assert_runs(dockerd, by_digest, image)


def test_cross_repository_mount(dockerd: DockerDaemon, registry_server: RegistryServer, image: AppImage) -> None:
    digest = push_as(dockerd, image, f"{registry_server.host}/e2e/app:v1")

    other = f"{registry_server.host}/e2e/other:v1"
    dockerd.run("tag", image.tag, other)
    other_digest, out = docker_push(dockerd, other)
    statuses = layer_statuses(out)
    assert len(statuses) == 3, out
    for layer, status in statuses.items():
        assert status in ("Mounted from e2e/app", "Layer already exists"), f"layer {layer} was {status!r}:\n{out}"
    assert other_digest == digest

    docker_forget(dockerd, other, f"{registry_server.host}/e2e/app:v1", image.tag)
    pull_fresh(dockerd, other)
    assert_runs(dockerd, other, image)


def test_image_survives_restart(dockerd: DockerDaemon, registry_server: RegistryServer, image: AppImage) -> None:
    ref = f"{registry_server.host}/e2e/app:v1"
    digest = push_as(dockerd, image, ref)
    docker_forget(dockerd, ref, image.tag)

    registry_server.restart()

    out = pull_fresh(dockerd, ref)
    assert f"Digest: {digest}" in out, out
    assert_runs(dockerd, ref, image)
