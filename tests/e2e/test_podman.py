"""podman push/pull against the registry under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .daemons import Podman
from .images import AppImage
from .server import RegistryServer

pytestmark = pytest.mark.e2e


def test_podman_push_pull(
    podman: Podman, registry_server: RegistryServer, app_image: AppImage, app_archive: Path, tmp_path: Path
) -> None:
    image_id = app_image.image_id.removeprefix("sha256:")
    podman.run("load", "--input", app_archive)
    assert podman.inspect(image_id, "{{.Id}}") == image_id

    ref = f"{registry_server.host}/e2e/pod:v1"
    digest_file = tmp_path / "digest"
    podman.run("tag", image_id, ref)
    podman.run("push", "--tls-verify=false", "--digestfile", digest_file, ref)
    digest = digest_file.read_text().strip()
    assert digest.startswith("sha256:"), digest

    podman.run("rmi", "--all", "--force")
    assert podman.run("images", "--quiet").stdout.strip() == "", "podman still has images after rmi --all"

    podman.run("pull", "--tls-verify=false", ref)
    assert podman.inspect(ref, "{{.Id}}") == image_id
    assert podman.inspect(ref, "{{.Digest}}") == digest
    assert f"{registry_server.host}/e2e/pod@{digest}" in podman.inspect(ref, "{{.RepoDigests}}")
