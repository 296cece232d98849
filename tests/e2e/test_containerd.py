"""containerd's ctr: import a docker-archive, push, pull back and run against the registry under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .daemons import Containerd
from .images import AppImage
from .procs import random_suffix
from .server import RegistryServer

pytestmark = pytest.mark.e2e

IMPORTED = "docker.io/e2e-local/app:base"


def test_ctr_push_pull(
    containerd: Containerd, registry_server: RegistryServer, app_image: AppImage, app_archive: Path
) -> None:
    containerd.ctr("images", "import", app_archive)
    local = containerd.images()
    assert IMPORTED in local, f"ctr images import did not create {IMPORTED}: {local}"
    digest = local[IMPORTED]

    ref = f"{registry_server.host}/e2e/ctr:v1"
    containerd.ctr("images", "push", "--plain-http", ref, IMPORTED)
    containerd.ctr("images", "rm", "--sync", IMPORTED)
    assert containerd.ctr("content", "ls", "--quiet").stdout.strip() == "", "content left after images rm --sync"

    containerd.ctr("images", "pull", "--plain-http", ref)
    assert containerd.images().get(ref) == digest, f"{ref} not listed with {digest} by ctr images ls"
    containerd.ctr("images", "check")

    container = f"e2e-{random_suffix()}"
    out = containerd.ctr("run", "--rm", ref, container).stdout
    assert out.split() == [app_image.blob_sha256, "/data/blob.bin"], f"{ref} printed {out!r}"
    containerd.ctr("images", "rm", "--sync", ref)
