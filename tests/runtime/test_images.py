"""`runtime import`, `tag` and `rmi` on the store: one-layer images, shared layers, and what rmi frees."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
import zstandard

from runtime import images
from runtime.errors import ImageNotFound
from runtime.reference import parse
from runtime.store import Store
from runtime.unpack import decompressed

from .layers import directory, file, symlink, tar_bytes


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, zstandard.compress], ids=["tar", "gzip", "zstd"])
def test_import_tarball_makes_a_one_layer_oci_image(tmp_path: Path, compress: object) -> None:
    tar = tar_bytes([directory("bin"), file("bin/tool", b"#!", mode=0o755), symlink("sh", "bin/tool")])
    source = tmp_path / "rootfs.tar"
    source.write_bytes(compress(tar))  # type: ignore[operator]
    store = Store(tmp_path / "store")
    record = images.import_image(store, source, parse("reg.test/app:1"), cmd=["/bin/tool"], env=["A=1"])

    manifest = json.loads(store.read_blob(record.manifest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["digest"] for layer in manifest["layers"]] == record.layers
    config = store.config_doc(record)
    assert config["config"] == {"Cmd": ["/bin/tool"], "Env": ["A=1"]}
    assert config["rootfs"]["diff_ids"] == record.diff_ids
    with decompressed(store.blob_path(record.layers[0])) as stream:
        assert stream.read() == tar  # the diff_id is the sha256 of exactly these bytes
    layer = store.layer_dir(record.diff_ids[0])
    assert (layer / "bin/tool").read_bytes() == b"#!" and os.readlink(layer / "sh") == "bin/tool"


def test_import_directory_tag_and_rmi_frees_only_unused_content(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/hostname").write_text("x\n")
    (rootfs / "link").symlink_to("/etc/hostname")
    store = Store(tmp_path / "store")
    record = images.import_image(store, rootfs, parse("reg.test/app:1"), cmd=[], env=[])
    assert os.readlink(store.layer_dir(record.diff_ids[0]) / "link") == "/etc/hostname"

    images.tag(store, "reg.test/app:1", parse("reg.test/app:2"))
    assert images.remove_image(store, "reg.test/app:1") == []  # still tagged :2
    assert store.has_layer(record.diff_ids[0])
    removed = images.remove_image(store, "reg.test/app:2")
    assert f"layer {record.diff_ids[0]}" in removed and f"blob {record.manifest}" in removed
    assert list(store.layers.iterdir()) == [] and list(store.blobs.iterdir()) == []
    with pytest.raises(ImageNotFound):
        images.remove_image(store, "reg.test/app:2")
