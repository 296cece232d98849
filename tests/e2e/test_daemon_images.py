"""The stock docker CLI against `runtime daemon` on a private socket: pull from our registry, images, inspect,
save and load, tag, push back (then our runtime pulls what was pushed), rmi, and errors as dockerd prints them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemons import DockerDaemon, push_digest
from .images import AppImage
from .procs import remove_tree, short_tmpdir
from .runtime_cli import RuntimeCli
from .runtime_daemon import RuntimeDaemon
from .server import RegistryServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def runtime_daemon() -> Iterator[RuntimeDaemon]:
    daemon = RuntimeDaemon(short_tmpdir("e2e-rtd-"))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def published(registry_server: RegistryServer, busybox_rootfs: Path) -> Iterator[str]:
    """A one-layer busybox image our runtime imported and pushed into the registry under test."""
    cli = RuntimeCli(short_tmpdir("e2e-rtpub-"))
    ref = f"{registry_server.host}/e2e/bb:1"
    try:
        cli("import", "--cmd", '["sh", "-c", "echo hi"]', busybox_rootfs, ref)
        cli("push", ref)
        yield ref
    finally:
        remove_tree(cli.base)


def test_docker_pull_images_tag_push_rmi_through_the_runtime_daemon(
    runtime_daemon: RuntimeDaemon, registry_server: RegistryServer, published: str
) -> None:
    docker, host = runtime_daemon.docker, registry_server.host
    pulled = docker("pull", published).stdout
    assert pulled.startswith("1: Pulling from e2e/bb\n"), pulled
    assert ": Pull complete\n" in pulled and f"Status: Downloaded newer image for {published}\n" in pulled
    assert pulled.endswith(f"{published}\n")  # docker's own last line: what it pulled
    assert "Image is up to date" in docker("pull", published).stdout

    listed = docker("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").stdout.split()
    assert listed[:2] == [f"{host}/e2e/bb", "1"] and len(listed) == 3
    image_id = listed[2]
    inspected = json.loads(docker("image", "inspect", published).stdout)[0]
    assert inspected["Id"].startswith(f"sha256:{image_id}") and inspected["Config"]["Cmd"] == ["sh", "-c", "echo hi"]

    copy = f"{host}/e2e/copy:2"
    docker("tag", published, copy)
    tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == sorted([published, copy])

    out = docker("push", copy).stdout
    assert out.startswith(f"The push refers to repository [{host}/e2e/copy]\n"), out
    assert "Mounted from e2e/bb" in out
    digest = push_digest(out)
    checker = RuntimeCli(short_tmpdir("e2e-rtchk-"))  # another client sees what docker pushed
    try:
        checker("pull", "-q", copy)
        assert checker.inspect(copy)["manifest"] == digest
    finally:
        remove_tree(checker.base)

    tarball = runtime_daemon.base / "bb.tar"  # docker save, rmi, docker load: the same image back
    docker("save", "-o", str(tarball), published)
    docker("rmi", published)
    assert docker("load", "-i", str(tarball)).stdout == f"Loaded image: {published}\n"
    assert json.loads(docker("image", "inspect", published).stdout)[0]["RootFS"] == inspected["RootFS"]

    assert docker("rmi", copy).stdout.splitlines() == [f"Untagged: {copy}", f"Untagged: {host}/e2e/copy@{digest}"]
    removed = docker("rmi", published).stdout.splitlines()
    assert removed[0] == f"Untagged: {published}" and f"Deleted: {inspected['Id']}" in removed
    assert docker("images", "-q").stdout == ""
    store = runtime_daemon.base / "store"
    assert os.listdir(store / "layers") == [] and os.listdir(store / "blobs" / "sha256") == []


def test_errors_print_as_they_do_against_dockerd(
    runtime_daemon: RuntimeDaemon, registry_server: RegistryServer
) -> None:
    missing = runtime_daemon.docker("pull", f"{registry_server.host}/e2e/nope:1", check=False)
    assert missing.returncode != 0
    assert missing.stderr.startswith(f"Error response from daemon: manifest for {registry_server.host}/e2e/nope:1 not")
    rmi = runtime_daemon.docker("rmi", "ghost:1", check=False)
    assert (rmi.returncode, rmi.stderr) == (1, "Error: No such image: ghost:1\n")  # the client's words for a 404
    inspect = runtime_daemon.docker("image", "inspect", "ghost:1", check=False)
    assert inspect.returncode != 0 and "No such image: ghost:1" in inspect.stderr
    tag = runtime_daemon.docker("tag", "ghost:1", "other:1", check=False)
    assert tag.returncode != 0 and "No such image: ghost:1" in tag.stderr
    push = runtime_daemon.docker("push", f"{registry_server.host}/e2e/ghost:1", check=False)
    assert push.returncode != 0 and "An image does not exist locally with the tag" in push.stderr


def test_docker_archives_cross_between_dockerd_and_the_runtime_daemon(
    dockerd: DockerDaemon, app_image: AppImage, runtime_daemon: RuntimeDaemon, tmp_path: Path
) -> None:
    """dockerd's `docker save` loads into the runtime daemon as the same image; the runtime daemon's save loads
    into dockerd, which runs it."""
    theirs = tmp_path / "theirs.tar"
    dockerd.run("save", "-o", theirs, app_image.tag)
    assert runtime_daemon.docker("load", "-i", str(theirs)).stdout == f"Loaded image: {app_image.tag}\n"
    ours = json.loads(runtime_daemon.docker("image", "inspect", app_image.tag).stdout)[0]
    assert (ours["Id"], ours["RootFS"]["Layers"]) == (app_image.image_id, dockerd_layers(dockerd, app_image.tag))

    back, tarball = "e2e-local/roundtrip:1", tmp_path / "ours.tar"
    runtime_daemon.docker("tag", app_image.tag, back)
    runtime_daemon.docker("save", "-o", str(tarball), back)
    try:
        assert dockerd.run("load", "-i", tarball).stdout == f"Loaded image: {back}\n"
        assert dockerd.run("run", "--rm", "--network", "none", back).stdout.split() == [
            app_image.blob_sha256,
            "/data/blob.bin",
        ]
    finally:
        dockerd.run("rmi", back, check=False)


def dockerd_layers(dockerd: DockerDaemon, ref: str) -> list[str]:
    layers: list[str] = json.loads(dockerd.inspect(ref, "{{json .RootFS.Layers}}"))
    return layers
