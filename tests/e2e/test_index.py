"""An OCI image index pushed by hand over HTTP; docker must pick the manifest for its platform."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from .daemons import DockerDaemon
from .images import OCI_INDEX, OciImage, make_index, make_oci_image, tar_files
from .server import RegistryServer

pytestmark = pytest.mark.e2e

ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


def native_and_foreign_arch() -> tuple[str, str]:
    native = ARCHES.get(platform.machine())
    if native is None:
        pytest.skip(f"no test image for machine {platform.machine()}")
    return native, "arm64" if native == "amd64" else "amd64"


def platform_image(arch: str, rootfs: Path | None) -> OciImage:
    """A runnable busybox image when `rootfs` is given, otherwise a single tiny layer; both say their arch."""
    marker = tar_files({"etc/platform": f"{arch}\n".encode()})
    layers = [tar_files({}, rootfs=rootfs), marker] if rootfs is not None else [marker]
    return make_oci_image(layers, arch=arch, cmd=["/bin/cat", "/etc/platform"])


def test_docker_pulls_its_platform_from_index(
    dockerd: DockerDaemon, registry_server: RegistryServer, busybox_rootfs: Path
) -> None:
    native_arch, foreign_arch = native_and_foreign_arch()
    native = platform_image(native_arch, busybox_rootfs)
    foreign = platform_image(foreign_arch, None)
    index = make_index([native, foreign])
    with registry_server.client() as client:
        client.push_image("e2e/multi", native)
        client.push_image("e2e/multi", foreign)
        client.put_manifest("e2e/multi", "v1", index)
        served = client.get_manifest("e2e/multi", "v1")
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == OCI_INDEX
    assert served.content == index.data

    ref = f"{registry_server.host}/e2e/multi:v1"
    out = dockerd.run("pull", ref).stdout
    assert f"Digest: {index.digest}" in out, out
    assert dockerd.inspect(ref, "{{.Architecture}}") == native_arch
    assert dockerd.inspect(ref, "{{.Id}}") == native.config.digest
    assert dockerd.run("run", "--rm", "--network", "none", ref).stdout == f"{native_arch}\n"

    dockerd.run("pull", "--platform", f"linux/{foreign_arch}", ref)
    assert dockerd.inspect(ref, "{{.Architecture}}") == foreign_arch
    assert dockerd.inspect(ref, "{{.Id}}") == foreign.config.digest
    dockerd.run("rmi", "--force", ref, native.config.digest, check=False)
