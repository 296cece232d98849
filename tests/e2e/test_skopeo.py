"""skopeo copy/inspect/list-tags/delete against the registry under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .daemons import Skopeo
from .images import OCI_MANIFEST, AppImage
from .procs import CommandFailed
from .server import RegistryServer

pytestmark = pytest.mark.e2e


def test_skopeo_round_trip(
    skopeo: Skopeo, registry_server: RegistryServer, app_image: AppImage, tmp_path: Path
) -> None:
    repo = f"docker://{registry_server.host}/e2e/sko"
    digest_file = tmp_path / "digest"
    source = f"docker-daemon:{app_image.tag}"
    daemon = f"--src-daemon-host={skopeo.docker_host}"
    skopeo.run(
        "copy", daemon, "--dest-tls-verify=false", "--format=oci", f"--digestfile={digest_file}", source, f"{repo}:v1"
    )
    digest = digest_file.read_text().strip()

    info = skopeo.inspect(f"{repo}:v1")
    assert info["Digest"] == digest
    assert len(info["Layers"]) == 3, info
    raw = json.loads(skopeo.run("inspect", "--tls-verify=false", "--raw", f"{repo}:v1").stdout)
    assert raw["mediaType"] == OCI_MANIFEST, raw
    config = skopeo.inspect(f"{repo}:v1", "--config")
    assert config["config"]["Cmd"] == ["/bin/sh", "-c", "sha256sum /data/blob.bin"], config

    skopeo.run("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"{repo}:v1", f"{repo}:v2")
    tags = json.loads(skopeo.run("list-tags", "--tls-verify=false", repo).stdout)
    assert sorted(tags["Tags"]) == ["v1", "v2"], tags

    layout = tmp_path / "layout"
    skopeo.run("copy", "--src-tls-verify=false", f"{repo}@{digest}", f"oci:{layout}:v1")
    index = json.loads((layout / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == digest, index
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1", index
    assert (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()

    skopeo.run("delete", "--tls-verify=false", f"{repo}@{digest}")
    for ref in (f"{repo}:v1", f"{repo}:v2", f"{repo}@{digest}"):
        with pytest.raises(CommandFailed, match="manifest unknown|not found"):
            skopeo.inspect(ref)
