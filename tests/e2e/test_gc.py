"""Garbage collection end to end: docker pushes two tags sharing layers, one is deleted, `registry gc` runs beside
the serving process, the shared layers stay and docker pulls and runs the other tag."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemons import DockerDaemon, docker_forget, docker_push
from .images import AppImage
from .procs import base_env, run
from .server import RegistryServer, needs_our_server, server_kind

pytestmark = [pytest.mark.e2e, needs_our_server("registry gc is ours")]


def stored_blobs(server: RegistryServer) -> set[str]:
    root = server.root / "data" / "docker/registry/v2/blobs/sha256"
    return {p.parent.name for p in root.glob("*/*/data")}


@pytest.fixture
def registry_server(tmp_path: Path) -> Iterator[RegistryServer]:
    """Reviews due at once (delay and lease 0), and no collector in the server: `registry gc` is the one that runs."""
    gc = {"enabled": False, "delay": "0s", "lease": "0s"}
    server = RegistryServer(tmp_path / "registry", server_kind(), extra_config={"storage": {"gc": gc}})
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_deleting_one_of_two_tags_frees_its_own_layers_and_the_other_still_pulls(
    dockerd: DockerDaemon, registry_server: RegistryServer, app_image: AppImage, tmp_path: Path
) -> None:
    base = f"{registry_server.host}/e2e/gc:base"
    extended = f"{registry_server.host}/e2e/gc:extended"
    dockerd.run("tag", app_image.tag, base)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "extra.bin").write_bytes(os.urandom(200 * 1024))
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY extra.bin /data/extra.bin\n")
    dockerd.run("build", "--tag", extended, context)
    docker_push(dockerd, base)
    extended_digest, _ = docker_push(dockerd, extended)
    before = stored_blobs(registry_server)

    with registry_server.client() as client:
        assert client.http.delete(f"/v2/e2e/gc/manifests/{extended_digest}").status_code == 202
    assert registry_server.config is not None
    out = run([sys.executable, "-m", "registry", "gc", registry_server.config], env=base_env()).stdout
    assert "freed: 0 manifest(s) and 2 blob(s)" in out, out  # the extra layer and the extended image's config
    assert len(before - stored_blobs(registry_server)) == 2

    docker_forget(dockerd, base, extended)
    dockerd.run("pull", base)
    printed = dockerd.run("run", "--rm", "--network", "none", base).stdout.split()
    assert printed == [app_image.blob_sha256, "/data/blob.bin"]
